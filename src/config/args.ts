// Command-line arguments. MMR took Go-style single-dash flags (-config PATH); we accept those
// and the double-dash spellings, so either habit works. argv excludes node and the script path
// (pass process.argv.slice(2)).

import { isKeyCommand, parseKeyCommand, type KeyCommand, type KeyCommandArgs } from '../cli-keys.js';

export type CliCommand =
  'serve' | 'migrate' | 'check-datastores' | 'version' | 'help' | 'import' | 'export' | KeyCommand;

export interface CliArgs {
  command: CliCommand;
  configPath?: string;
  /** For generate-signing-key and combine-signing-keys (src/cli-keys.ts). */
  keys?: KeyCommandArgs;
  /** For import and export: the arguments after the command word (src/cli-import.ts parses them). */
  rest?: string[];
  /** Set when the arguments made no sense; command is then 'help' so the usage gets printed. */
  error?: string;
}

/** Environment variable naming the config file or directory when no flag does. */
export const CONFIG_ENV = 'REPO_CONFIG';

const CONFIG_FLAGS = ['-config', '--config'];
const VERSION_FLAGS = ['-version', '--version'];
const HELP_FLAGS = ['-h', '-help', '--help'];

interface Scan {
  configPath?: string;
  flags: string[];
  positionals: string[];
  error?: string;
}

function scan(argv: string[]): Scan {
  const out: Scan = { flags: [], positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('-') && eq > 0 ? arg.slice(0, eq) : arg;
    if (CONFIG_FLAGS.includes(flag)) {
      const value = eq > 0 && flag !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') out.error ??= `${flag} needs a path`;
      else out.configPath = value; // the last one wins, as with Go's flag package
    } else if (arg.startsWith('-') && arg !== '-') {
      out.flags.push(arg);
    } else {
      out.positionals.push(arg);
    }
  }
  return out;
}

/** The config path from -config/--config (either `FLAG PATH` or `FLAG=PATH`), else REPO_CONFIG. */
export function resolveConfigPath(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  const fromFlag = scan(argv).configPath;
  if (fromFlag !== undefined) return fromFlag;
  const fromEnv = env[CONFIG_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

export function parseCliArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CliArgs {
  // The key utilities take their own flags (and no config), so they parse separately.
  if (isKeyCommand(argv[0])) return parseKeyCommand(argv[0], argv.slice(1));
  // import and export have subcommands with flags of their own, -config among them.
  if (argv[0] === 'import' || argv[0] === 'export') return { command: argv[0], rest: argv.slice(1) };
  const s = scan(argv);
  const configPath = resolveConfigPath(argv, env);
  const withPath = (command: CliCommand, error?: string): CliArgs => ({
    command,
    ...(configPath !== undefined ? { configPath } : {}),
    ...(error !== undefined ? { error } : {}),
  });
  if (s.error) return withPath('help', s.error);
  if (s.flags.some((f) => HELP_FLAGS.includes(f))) return withPath('help');
  if (s.flags.some((f) => VERSION_FLAGS.includes(f))) return withPath('version');
  const unknown = s.flags[0];
  if (unknown !== undefined) return withPath('help', `unknown flag ${unknown}`);
  const [first, ...rest] = s.positionals;
  if (rest.length > 0) return withPath('help', `unexpected argument ${rest[0]}`);
  if (first === undefined || first === 'serve') return withPath('serve');
  if (first === 'migrate' || first === 'check-datastores' || first === 'version' || first === 'help')
    return withPath(first);
  return withPath('help', `unknown command ${first}`);
}
