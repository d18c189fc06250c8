import { loadConfig } from './config/load.js';
import { resolveConfigPath } from './config/args.js';
import { loggerFromConfig } from './logging/from-config.js';
import { parseFlags, usageOf, type Subcommand } from './import/command.js';
import { progressFor } from './import/progress.js';
import { mmrImportCommand } from './import/mmr/command.js';
import { synapseImportCommand } from './import/synapse/command.js';
import { archiveImportCommand, exportCommand } from './archive/command.js';

// `media-repo import mmr|synapse|archive …` and `media-repo export …`: migration in and out.
// Each subcommand parses its own flags strictly; an unknown command or flag prints the usage of
// what was asked for and exits 2 (never the general usage with exit 0).

const IMPORTS: Record<string, Subcommand> = {
  mmr: mmrImportCommand,
  synapse: synapseImportCommand,
  archive: archiveImportCommand,
};

export function importUsage(): string {
  const lines = ['Usage: media-repo import SOURCE [flags]', '', 'SOURCE:'];
  for (const [name, c] of Object.entries(IMPORTS)) lines.push(`  ${name.padEnd(10)}${c.summary}`);
  lines.push('', 'media-repo import SOURCE --help shows the flags of one source.');
  return lines.join('\n');
}

const HELP = new Set(['-h', '-help', '--help']);

/** Runs `import …` or `export …` (argv after the command word); returns the exit code. */
export async function runMigrationCommand(command: 'import' | 'export', argv: string[]): Promise<number> {
  let cmd: Subcommand = exportCommand;
  let rest = argv;
  if (command === 'import') {
    const source = argv[0];
    if (source === undefined || HELP.has(source)) {
      (source === undefined ? console.error : console.log)(importUsage());
      return source === undefined ? 2 : 0;
    }
    const found = IMPORTS[source];
    if (!found) {
      console.error(`media-repo: unknown import source ${JSON.stringify(source)}\n\n${importUsage()}`);
      return 2;
    }
    cmd = found;
    rest = argv.slice(1);
  }
  if (rest.some((a) => HELP.has(a))) {
    console.log(usageOf(cmd));
    return 0;
  }
  const flags = parseFlags(cmd, rest);
  if ('error' in flags) {
    console.error(`media-repo ${cmd.name}: ${flags.error}\n\n${usageOf(cmd)}`);
    return 2;
  }
  const configPath = (flags.values.config as string | undefined) ?? resolveConfigPath([], process.env);
  const config = await loadConfig(configPath);
  // Logs go to stderr: stdout carries the command's own output (progress JSON lines, summaries).
  const log = loggerFromConfig(config.global, { sink: (line) => process.stderr.write(`${line}\n`) });
  for (const w of config.warnings ?? []) log.warn('config warning', { warning: w });
  const abort = new AbortController();
  const stop = (signal: string) => {
    if (abort.signal.aborted) process.exit(130); // a second Ctrl-C: now
    // An export is not resumable (the part in progress is removed); imports pick up where they stopped.
    log.warn(
      cmd === exportCommand
        ? 'stopping; the part in progress is removed: run the export again into an empty --out directory'
        : 'stopping at the next batch; run the same command again to resume',
      { signal },
    );
    abort.abort();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return cmd.run(flags, {
    config,
    configPath,
    log,
    progress: progressFor(),
    print: (line) => console.log(line),
    signal: abort.signal,
  });
}
