import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { ProgressSink } from './progress.js';

// The contract of `media-repo import …` and `media-repo export …` subcommands: each declares
// its flags and usage, the dispatcher (src/cli-import.ts) parses them strictly (an unknown flag
// or a missing value prints that subcommand's usage and exits 2) and calls run.

export type FlagKind = 'string' | 'boolean';

export interface FlagSpec {
  kind: FlagKind;
  /** One line for the usage. */
  help: string;
  required?: boolean;
}

export interface ParsedFlags {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface CommandContext {
  config: LoadedConfig;
  configPath: string | undefined;
  log: Logger;
  progress: ProgressSink;
  /** Human-readable lines (dry-run plans, summaries) on stdout. */
  print(line: string): void;
  /** Set by SIGINT/SIGTERM: long loops stop at the next batch boundary (the run is resumable). */
  readonly signal: AbortSignal;
}

export interface Subcommand {
  /** `import mmr`, `export`: how the usage names it. */
  name: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** Positional arguments: what they are (for the usage), or null when none are taken. */
  positionals: string | null;
  /** Returns the exit code. */
  run(flags: ParsedFlags, ctx: CommandContext): Promise<number>;
}

/** Strict flag parsing: `--name value`, `--name=value`, `-name value`; booleans take no value. */
export function parseFlags(cmd: Subcommand, argv: string[]): ParsedFlags | { error: string } {
  const values: ParsedFlags['values'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq > 0 ? arg.slice(0, eq) : arg).replace(/^--?/, '');
    const spec = cmd.flags[name];
    if (!spec) return { error: `unknown flag ${arg.slice(0, eq > 0 ? eq : undefined)}` };
    if (spec.kind === 'boolean') {
      if (eq > 0) {
        const v = arg.slice(eq + 1);
        if (v !== 'true' && v !== 'false') return { error: `--${name} takes no value (or =true / =false)` };
        values[name] = v === 'true';
      } else values[name] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') return { error: `--${name} needs a value` };
    values[name] = value;
  }
  if (cmd.positionals === null && positionals.length > 0) return { error: `unexpected argument ${positionals[0]}` };
  for (const [name, spec] of Object.entries(cmd.flags)) {
    if (spec.required && values[name] === undefined) return { error: `--${name} is required` };
  }
  return { values, positionals };
}

/** The usage of one subcommand. */
export function usageOf(cmd: Subcommand): string {
  const lines = [
    `Usage: media-repo ${cmd.name} [flags]${cmd.positionals ? ` ${cmd.positionals}` : ''}`,
    '',
    cmd.summary,
    '',
  ];
  const names = Object.keys(cmd.flags);
  const width = Math.max(...names.map((n) => n.length + (cmd.flags[n]!.kind === 'string' ? 8 : 0))) + 4;
  for (const n of names) {
    const f = cmd.flags[n]!;
    const left = `  --${n}${f.kind === 'string' ? ' VALUE' : ''}`;
    lines.push(`${left.padEnd(width + 2)}${f.help}${f.required ? ' (required)' : ''}`);
  }
  return lines.join('\n');
}

/** The `-config PATH` flag every subcommand takes (the media-repo config: database, datastores). */
export const CONFIG_FLAG: Record<string, FlagSpec> = {
  config: { kind: 'string', help: 'media-repo config file or directory (else REPO_CONFIG, else embedded defaults)' },
};
