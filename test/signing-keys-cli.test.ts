import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCliArgs } from '../src/config/args.js';
import {
  formatSigningKeys,
  generateSigningKey,
  parseSigningKeys,
  signingKeyFromSeed,
} from '../src/matrix/signing-keys.js';

// generate-signing-key and combine-signing-keys, run as real child processes of the built CLI.
const cli = new URL('../src/cli.js', import.meta.url).pathname;
const run = (args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], {
    env: { ...process.env, REPO_CONFIG: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });

function tempDir(t: Tap): string {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-keycli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

t.test('generate-signing-key writes a private file in the asked format', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'syn.key');
  const r = run(['generate-signing-key', '-format', 'synapse', '-output', file]);
  t.equal(r.status, 0, r.stderr);
  const text = readFileSync(file, 'utf8');
  t.match(text, /^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n$/, 'one Synapse line');
  t.equal(statSync(file).mode & 0o777, 0o600, 'mode 0600');
  const key = parseSigningKeys(text)[0]!;
  t.match(r.stderr, key.publicKeyBase64, 'the public key is reported');
  t.equal(r.stdout, '', 'nothing on stdout when writing a file');

  const again = run(['generate-signing-key', '-format', 'synapse', '-output', file]);
  t.equal(again.status, 1, 'refuses to overwrite');
  t.match(again.stderr, /already exists/);
  t.equal(readFileSync(file, 'utf8'), text, 'the existing key is untouched');
});

t.test('generate-signing-key defaults: MMR format on stdout; --flag=value works', async (t) => {
  const r = run(['generate-signing-key']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^-----BEGIN MMR PRIVATE KEY-----\nKey-ID: ed25519:a_\w{4}\nVersion: 1\n/);
  t.equal(parseSigningKeys(r.stdout).length, 1);
  const dir = tempDir(t);
  const file = join(dir, 'd.pem');
  const d = run(['generate-signing-key', '--format=dendrite', `--output=${file}`]);
  t.equal(d.status, 0, d.stderr);
  t.match(readFileSync(file, 'utf8'), /^-----BEGIN MATRIX PRIVATE KEY-----\n/);
});

t.test('bad arguments exit 2 with usage', async (t) => {
  for (const args of [
    ['generate-signing-key', '-format', 'pem'],
    ['generate-signing-key', '-format'],
    ['generate-signing-key', '-bogus'],
    ['generate-signing-key', 'extra'],
    ['combine-signing-keys', '-format', 'mmr', 'in.key'], // no -output
    ['combine-signing-keys', '-output', 'out.key'], // no inputs
  ]) {
    const r = run(args);
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, /Usage:/, `${args.join(' ')}: usage`);
  }
});

t.test('combine-signing-keys merges files of any format', async (t) => {
  const dir = tempDir(t);
  const a = generateSigningKey('a');
  const b = generateSigningKey('b');
  const c = generateSigningKey('c');
  writeFileSync(join(dir, 'hs.key'), formatSigningKeys([a, b], 'synapse'));
  writeFileSync(join(dir, 'mmr.pem'), formatSigningKeys([c], 'mmr'));
  writeFileSync(join(dir, 'dup.pem'), formatSigningKeys([a], 'dendrite')); // same key again: kept once
  const out = join(dir, 'combined.key');
  const r = run([
    'combine-signing-keys',
    '-format',
    'synapse',
    '-output',
    out,
    join(dir, 'hs.key'),
    join(dir, 'mmr.pem'),
    join(dir, 'dup.pem'),
  ]);
  t.equal(r.status, 0, r.stderr);
  const keys = parseSigningKeys(readFileSync(out, 'utf8'));
  t.same(
    keys.map((k) => k.keyId),
    ['ed25519:a', 'ed25519:b', 'ed25519:c'],
  );
  t.same(
    keys.map((k) => k.publicKeyBase64),
    [a, b, c].map((k) => k.publicKeyBase64),
    'the same key material',
  );
  t.equal(statSync(out).mode & 0o777, 0o600);

  const exists = run(['combine-signing-keys', '-output', out, join(dir, 'hs.key')]);
  t.equal(exists.status, 1, 'refuses to overwrite');

  const clash = signingKeyFromSeed(Buffer.alloc(32, 9), 'ed25519:a');
  writeFileSync(join(dir, 'clash.key'), formatSigningKeys([clash], 'synapse'));
  const bad = run(['combine-signing-keys', '-output', join(dir, 'x.key'), join(dir, 'hs.key'), join(dir, 'clash.key')]);
  t.equal(bad.status, 1, 'same key ID, different seed');
  t.match(bad.stderr, /ed25519:a.*different key material/);

  writeFileSync(join(dir, 'junk.key'), 'not a key');
  const junk = run(['combine-signing-keys', '-output', join(dir, 'y.key'), join(dir, 'junk.key')]);
  t.equal(junk.status, 1, 'unreadable input');
  t.match(junk.stderr, /junk\.key: signing key file:/);
  const missing = run(['combine-signing-keys', '-output', join(dir, 'z.key'), join(dir, 'nope.key')]);
  t.equal(missing.status, 1, 'missing input');
  t.match(missing.stderr, /nope\.key/);
});

t.test('parseCliArgs returns the key commands with their arguments', async (t) => {
  t.same(parseCliArgs(['generate-signing-key'], {}), {
    command: 'generate-signing-key',
    keys: { format: 'mmr', inputs: [] },
  });
  t.same(parseCliArgs(['generate-signing-key', '--format=synapse', '-output', 'k'], {}), {
    command: 'generate-signing-key',
    keys: { format: 'synapse', output: 'k', inputs: [] },
  });
  t.same(parseCliArgs(['combine-signing-keys', 'a', '-format', 'dendrite', '--output=o', 'b'], {}), {
    command: 'combine-signing-keys',
    keys: { format: 'dendrite', output: 'o', inputs: ['a', 'b'] },
  });
  t.same(parseCliArgs(['generate-signing-key', '--help'], {}), { command: 'help' });
  t.match(parseCliArgs(['generate-signing-key', '-config', 'c'], {}), {
    command: 'help',
    error: /unknown flag -config/,
  });
  t.match(parseCliArgs(['generate-signing-key', '-output='], {}), { command: 'help', error: /-output needs a value/ });
});
