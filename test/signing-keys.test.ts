import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBase64 } from '../src/matrix/base64.js';
import {
  formatSigningKeys,
  generateSigningKey,
  loadSigningKey,
  parseSigningKeys,
  signingKeyFromSeed,
  signJson,
  verifyJsonSignature,
  type KeyFileFormat,
} from '../src/matrix/signing-keys.js';

// Ed25519 keys from seeds, the spec's signing test vectors, and the three key file formats.

// The spec's test signing key (appendix "Cryptographic Test Vectors"): seed, key ID, server "domain".
const SPEC_SEED = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1';
const spec = signingKeyFromSeed(decodeBase64(SPEC_SEED), 'ed25519:1');
const SIG_EMPTY = 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ';
const SIG_ONE_TWO = 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw';

t.test('the spec test vectors', async (t) => {
  t.equal(spec.publicKeyBase64, 'XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI', 'public key from the seed');
  t.same(signJson({}, 'domain', spec), { signatures: { domain: { 'ed25519:1': SIG_EMPTY } } });
  t.same(signJson({ one: 1, two: 'Two' }, 'domain', spec), {
    one: 1,
    two: 'Two',
    signatures: { domain: { 'ed25519:1': SIG_ONE_TWO } },
  });
  t.ok(
    verifyJsonSignature(
      { signatures: { domain: { 'ed25519:1': SIG_EMPTY } } },
      'domain',
      'ed25519:1',
      spec.publicKeyBase64,
    ),
  );
  t.notOk(
    verifyJsonSignature(
      { x: 1, signatures: { domain: { 'ed25519:1': SIG_EMPTY } } },
      'domain',
      'ed25519:1',
      spec.publicKeyBase64,
    ),
    'the signature does not cover other content',
  );
});

t.test('signJson leaves unsigned out of the signature and keeps other signatures', async (t) => {
  const input = { one: 1, two: 'Two', unsigned: { age_ts: 5 }, signatures: { other: { 'ed25519:x': 'abc' } } };
  const signed = signJson(input, 'domain', spec);
  t.equal(signed.signatures.domain!['ed25519:1'], SIG_ONE_TWO, 'same signature as without unsigned/signatures');
  t.equal(signed.signatures.other!['ed25519:x'], 'abc', 'existing signatures kept');
  t.same(signed.unsigned, { age_ts: 5 }, 'unsigned kept');
  t.same(input.signatures, { other: { 'ed25519:x': 'abc' } }, 'the input is not modified');
  const k2 = generateSigningKey('b');
  const both = signJson(signed, 'domain', k2);
  t.ok(verifyJsonSignature(both, 'domain', 'ed25519:1', spec.publicKeyBase64), 'first signature still valid');
  t.ok(verifyJsonSignature(both, 'domain', 'ed25519:b', k2.publicKeyBase64), 'second signature valid');
  t.ok(
    verifyJsonSignature({ ...both, unsigned: { changed: true } }, 'domain', 'ed25519:b', k2.publicKeyBase64),
    'unsigned may change',
  );
});

t.test('verifyJsonSignature is false, never throws, on bad input', async (t) => {
  const signed = signJson({ a: 1 }, 'domain', spec);
  const pub = spec.publicKeyBase64;
  t.notOk(verifyJsonSignature({ ...signed, a: 2 }, 'domain', 'ed25519:1', pub), 'tampered content');
  t.notOk(verifyJsonSignature(signed, 'other', 'ed25519:1', pub), 'other server name');
  t.notOk(verifyJsonSignature(signed, 'domain', 'ed25519:2', pub), 'other key ID');
  t.notOk(verifyJsonSignature(signed, 'domain', 'ed25519:1', generateSigningKey().publicKeyBase64), 'other key');
  t.notOk(verifyJsonSignature(signed, 'domain', 'ed25519:1', 'not base64!'), 'garbage public key');
  t.notOk(verifyJsonSignature(signed, 'domain', 'ed25519:1', 'AAAA'), 'short public key');
  t.notOk(
    verifyJsonSignature({ a: 1, signatures: { domain: { 'ed25519:1': '!!' } } }, 'domain', 'ed25519:1', pub),
    'garbage signature',
  );
  t.notOk(
    verifyJsonSignature({ a: 1.5, signatures: signed.signatures }, 'domain', 'ed25519:1', pub),
    'not canonical-encodable',
  );
  t.notOk(verifyJsonSignature({ a: 1 }, 'domain', 'ed25519:1', pub), 'no signatures');
  t.notOk(
    verifyJsonSignature({ a: 1, signatures: { domain: { 'ed25519:1': 7 } } }, 'domain', 'ed25519:1', pub),
    'non-string signature',
  );
});

t.test('generated keys and seeds', async (t) => {
  const k = generateSigningKey();
  t.match(k.keyId, /^ed25519:a_[A-Za-z0-9]{4}$/, 'default version');
  t.equal(k.seed.length, 32);
  t.not(generateSigningKey().seed.toString('hex'), k.seed.toString('hex'), 'random');
  t.equal(signingKeyFromSeed(k.seed, k.keyId).publicKeyBase64, k.publicKeyBase64, 'deterministic from the seed');
  t.throws(() => signingKeyFromSeed(Buffer.alloc(31), 'ed25519:x'), /32/);
  t.throws(() => signingKeyFromSeed(Buffer.alloc(32), 'rsa:x'), /key ID/);
  t.throws(() => signingKeyFromSeed(Buffer.alloc(32), 'ed25519:a b'), /key ID/);
});

t.test('each file format round-trips', async (t) => {
  const keys = [generateSigningKey(), generateSigningKey('second')];
  for (const format of ['mmr', 'synapse', 'dendrite'] as KeyFileFormat[]) {
    const text = formatSigningKeys(keys, format);
    const back = parseSigningKeys(text);
    t.same(
      back.map((k) => k.keyId),
      keys.map((k) => k.keyId),
      `${format}: key IDs`,
    );
    t.same(
      back.map((k) => k.seed.toString('hex')),
      keys.map((k) => k.seed.toString('hex')),
      `${format}: seeds`,
    );
    t.equal(back[1]!.publicKeyBase64, keys[1]!.publicKeyBase64, `${format}: public key`);
  }
  const mmr = formatSigningKeys([spec], 'mmr');
  t.equal(
    mmr,
    '-----BEGIN MMR PRIVATE KEY-----\nKey-ID: ed25519:1\nVersion: 1\n\nYJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0=\n-----END MMR PRIVATE KEY-----\n',
    'MMR layout',
  );
  t.equal(
    formatSigningKeys([spec], 'synapse'),
    'ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n',
    'Synapse layout',
  );
  t.match(
    formatSigningKeys([spec], 'dendrite'),
    /^-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:1\n\n/,
    'Dendrite layout',
  );
});

t.test('real-world files', async (t) => {
  const syn = parseSigningKeys(`ed25519 a_Abc1 ${SPEC_SEED}\n\ned25519 auto ${encodeSeed(7)}\r\n`);
  t.same(
    syn.map((k) => k.keyId),
    ['ed25519:a_Abc1', 'ed25519:auto'],
    'Synapse multi-line file with a blank line and CRLF',
  );
  t.equal(syn[0]!.publicKeyBase64, spec.publicKeyBase64, 'the Synapse line decodes to the spec key');
  const dendrite = `-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:abc\n\n${SPEC_SEED}=\n-----END MATRIX PRIVATE KEY-----\n`;
  t.equal(parseSigningKeys(dendrite)[0]!.publicKeyBase64, spec.publicKeyBase64, 'Dendrite PEM');
  const mixed = `-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n${formatSigningKeys([spec], 'mmr')}`;
  t.equal(parseSigningKeys(mixed)[0]!.keyId, 'ed25519:1', 'unrelated PEM blocks are skipped');
});

t.test('bad files fail with a clear reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /no keys found/],
    ['hello world', /not a Synapse key line/],
    [`ed25519 a_b ${SPEC_SEED} extra`, /line 1/],
    [`rsa a_b ${SPEC_SEED}`, /line 1/],
    ['ed25519 a_b AAAA', /3 bytes, not a 32-byte/],
    ['ed25519 a_b !!!!', /not base64/],
    [
      '-----BEGIN MMR PRIVATE KEY-----\nKey-ID: ed25519:1\nVersion: 2\n\nAAAA\n-----END MMR PRIVATE KEY-----\n',
      /unsupported MMR key format version 2/,
    ],
    [`-----BEGIN MATRIX PRIVATE KEY-----\n${SPEC_SEED}\n-----END MATRIX PRIVATE KEY-----\n`, /missing Key-ID/],
    [
      `-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: rsa:1\n\n${SPEC_SEED}\n-----END MATRIX PRIVATE KEY-----\n`,
      /not an ed25519 key/,
    ],
    [
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      /no MMR PRIVATE KEY or MATRIX PRIVATE KEY block/,
    ],
  ];
  for (const [text, why] of cases) {
    const label = JSON.stringify(text).slice(0, 40);
    t.throws(() => parseSigningKeys(text), { message: /^signing key file: / }, `prefix for ${label}`);
    t.throws(() => parseSigningKeys(text), why, `reason for ${label}`);
  }
});

t.test('loadSigningKey reads the first key and names the path on errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.key');
  writeFileSync(good, formatSigningKeys([spec, generateSigningKey()], 'synapse'));
  t.equal(loadSigningKey(good).keyId, 'ed25519:1');
  const bad = join(dir, 'bad.key');
  writeFileSync(bad, 'nonsense');
  t.throws(() => loadSigningKey(bad), new RegExp(`^${bad}: signing key file:`));
  t.throws(() => loadSigningKey(join(dir, 'missing.key')), /missing\.key.*ENOENT/);
});

function encodeSeed(fill: number): string {
  return Buffer.alloc(32, fill).toString('base64').replace(/=+$/, '');
}
