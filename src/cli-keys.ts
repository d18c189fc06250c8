import { readFileSync, writeFileSync } from 'node:fs';
import {
  formatSigningKeys,
  generateSigningKey,
  KEY_FILE_FORMATS,
  parseSigningKeys,
  type KeyFileFormat,
  type SigningKey,
} from './matrix/signing-keys.js';

// `generate-signing-key` and `combine-signing-keys`, after MMR's utilities of the same names:
// make a federation signing key, or merge key files (any format) into one file of a chosen
// format, e.g. so the homeserver can publish the media repo's key next to its own.

export const KEY_COMMANDS = ['generate-signing-key', 'combine-signing-keys'] as const;
export type KeyCommand = (typeof KEY_COMMANDS)[number];

export interface KeyCommandArgs {
  format: KeyFileFormat;
  output?: string;
  inputs: string[];
}

export function isKeyCommand(arg: string | undefined): arg is KeyCommand {
  return (KEY_COMMANDS as readonly string[]).includes(arg ?? '');
}

const VALUE_FLAGS: Record<string, 'output' | 'format'> = {
  '-output': 'output',
  '--output': 'output',
  '-format': 'format',
  '--format': 'format',
};

/** What parseKeyCommand makes of the arguments: the command to run ('help' when they made no
 * sense, with the reason), as config/args.ts's CliArgs takes it. Declared here so that module
 * depends on this one and not the other way round. */
export interface ParsedKeyCommand {
  command: KeyCommand | 'help';
  keys?: KeyCommandArgs;
  error?: string;
}

/** Parses the arguments after the command word; `-flag value` and `--flag=value` both work. */
export function parseKeyCommand(command: KeyCommand, argv: string[]): ParsedKeyCommand {
  const fail = (error: string): ParsedKeyCommand => ({ command: 'help', error });
  const got: { output?: string; format?: string } = {};
  const inputs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (['-h', '-help', '--help'].includes(arg)) return { command: 'help' };
    if (!arg.startsWith('-') || arg === '-') {
      inputs.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const field = VALUE_FLAGS[flag];
    if (!field) return fail(`unknown flag ${flag} for ${command}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') return fail(`${flag} needs a value`);
    got[field] = value; // the last one wins, as with Go's flag package
  }
  const format = got.format ?? 'mmr';
  if (!(KEY_FILE_FORMATS as readonly string[]).includes(format)) {
    return fail(`unknown key format ${format} (want ${KEY_FILE_FORMATS.join(', ')})`);
  }
  if (command === 'generate-signing-key' && inputs.length > 0) return fail(`unexpected argument ${inputs[0]}`);
  if (command === 'combine-signing-keys') {
    if (got.output === undefined) return fail('combine-signing-keys needs -output FILE');
    if (inputs.length === 0) return fail('combine-signing-keys needs at least one input key file');
  }
  const keys: KeyCommandArgs = {
    format: format as KeyFileFormat,
    inputs,
    ...(got.output !== undefined ? { output: got.output } : {}),
  };
  return { command, keys };
}

/** Runs a parsed key command; returns the exit status (1: the work itself failed). */
export function runKeyCommand(command: KeyCommand, args: KeyCommandArgs): number {
  try {
    const keys = command === 'generate-signing-key' ? [generateSigningKey()] : combine(args.inputs);
    const text = formatSigningKeys(keys, args.format);
    if (args.output === undefined) {
      process.stdout.write(text);
    } else {
      try {
        // 'wx': never replace an existing key file (losing a published key breaks federation).
        writeFileSync(args.output, text, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST')
          throw new Error(`${args.output} already exists; refusing to overwrite it`);
        throw e;
      }
    }
    for (const k of keys) {
      console.error(
        `${k.keyId} public key ${k.publicKeyBase64}${args.output !== undefined ? ` written to ${args.output}` : ''} (${args.format} format)`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`media-repo ${command}: ${(e as Error).message}`);
    return 1;
  }
}

function combine(paths: string[]): SigningKey[] {
  const byId = new Map<string, SigningKey>();
  for (const path of paths) {
    let found: SigningKey[];
    try {
      found = parseSigningKeys(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
    for (const k of found) {
      const prev = byId.get(k.keyId);
      if (prev && !prev.seed.equals(k.seed))
        throw new Error(`${path}: key ${k.keyId} appears twice with different key material`);
      byId.set(k.keyId, k); // the same key in two files is kept once
    }
  }
  return [...byId.values()];
}
