import t from 'tap';
import { generateSigningKey, signJson, type SigningKey } from '../src/matrix/signing-keys.js';
import { createServerKeyFetcher } from '../src/matrix/server-keys.js';

// Fetching other servers' keys: validation of /_matrix/key/v2/server responses and caching,
// with an injected fetch and clock.

const DAY = 24 * 3600_000;
const T0 = 1_700_000_000_000;

function response(server: string, keys: SigningKey[], validUntil: number, extra: object = {}): object {
  let body: object = {
    server_name: server,
    valid_until_ts: validUntil,
    verify_keys: Object.fromEntries(keys.map((k) => [k.keyId, { key: k.publicKeyBase64 }])),
    old_verify_keys: {},
    ...extra,
  };
  for (const k of keys) body = signJson(body, server, k);
  return body;
}

function setup(serve: (server: string) => unknown) {
  let clock = T0;
  const calls: string[] = [];
  const warnings: string[] = [];
  const fetcher = createServerKeyFetcher({
    fetchKeys: async (s) => {
      calls.push(s);
      const r = serve(s);
      if (r instanceof Error) throw r;
      return r;
    },
    now: () => clock,
    log: {
      warn: (msg) => {
        warnings.push(msg);
      },
    },
  });
  return {
    fetcher,
    calls,
    warnings,
    advance: (ms: number) => {
      clock += ms;
    },
    at: (ms: number) => {
      clock = T0 + ms;
    },
  };
}

const k1 = generateSigningKey('k1');
const k2 = generateSigningKey('k2');

t.test('a valid response is accepted and cached', async (t) => {
  const s = setup((srv) => response(srv, [k1, k2], T0 + DAY));
  t.equal(await s.fetcher.publicKey('remote.example', 'ed25519:k1'), k1.publicKeyBase64);
  t.equal(await s.fetcher.publicKey('remote.example', 'ed25519:k2'), k2.publicKeyBase64, 'second key from the cache');
  t.same(s.calls, ['remote.example'], 'one fetch');
  t.equal(
    await s.fetcher.publicKey('other.example', 'ed25519:k1'),
    k1.publicKeyBase64,
    'servers are cached separately',
  );
  t.same(s.calls, ['remote.example', 'other.example']);
});

t.test('invalid responses are rejected', async (t) => {
  const forger = generateSigningKey('k1');
  const cases: Array<[string, (srv: string) => unknown]> = [
    [
      'forged self-signature',
      (srv) => {
        const r = response(srv, [forger], T0 + DAY) as Record<string, unknown>;
        r.verify_keys = { 'ed25519:k1': { key: k1.publicKeyBase64 } }; // claims k1, signed by another key
        return r;
      },
    ],
    [
      'missing self-signature',
      (srv) => {
        const r = response(srv, [k1], T0 + DAY) as Record<string, unknown>;
        delete r.signatures;
        return r;
      },
    ],
    [
      'signed by only one of two keys',
      (srv) => {
        const r = signJson(
          {
            server_name: srv,
            valid_until_ts: T0 + DAY,
            verify_keys: { 'ed25519:k1': { key: k1.publicKeyBase64 }, 'ed25519:k2': { key: k2.publicKeyBase64 } },
          },
          srv,
          k1,
        );
        return r;
      },
    ],
    ['content changed after signing', (srv) => ({ ...response(srv, [k1], T0 + DAY), valid_until_ts: T0 + 2 * DAY })],
    ['server_name mismatch', () => response('evil.example', [k1], T0 + DAY)],
    ['expired valid_until_ts', (srv) => response(srv, [k1], T0 - 1)],
    [
      'valid_until_ts missing',
      (srv) => {
        const r = response(srv, [k1], T0 + DAY) as Record<string, unknown>;
        delete r.valid_until_ts;
        return signJson(r, srv, k1);
      },
    ],
    ['no verify_keys', (srv) => signJson({ server_name: srv, valid_until_ts: T0 + DAY }, srv, k1)],
    ['not an object', () => 'hello'],
    ['fetch fails', () => new Error('connection refused')],
  ];
  for (const [name, serve] of cases) {
    const s = setup(serve);
    t.equal(await s.fetcher.publicKey('remote.example', 'ed25519:k1'), null, name);
    t.equal(s.warnings.length, 1, `${name}: logged`);
  }
});

t.test('old_verify_keys are not valid for requests', async (t) => {
  const old = generateSigningKey('old');
  const s = setup((srv) =>
    response(srv, [k1], T0 + DAY, {
      old_verify_keys: { 'ed25519:old': { key: old.publicKeyBase64, expired_ts: T0 - DAY } },
    }),
  );
  t.equal(await s.fetcher.publicKey('remote.example', 'ed25519:old'), null);
  t.equal(
    await s.fetcher.publicKey('remote.example', 'ed25519:k1'),
    k1.publicKeyBase64,
    'the response itself was fine',
  );
});

t.test('cache lifetime: half the remaining validity, at most 7 days', async (t) => {
  const s = setup((srv) => response(srv, [k1], T0 + 10 * 3600_000)); // valid 10 h: cached 5 h
  await s.fetcher.publicKey('a.example', 'ed25519:k1');
  s.at(5 * 3600_000 - 1);
  await s.fetcher.publicKey('a.example', 'ed25519:k1');
  t.equal(s.calls.length, 1, 'still cached just before half the validity');
  s.at(5 * 3600_000);
  await s.fetcher.publicKey('a.example', 'ed25519:k1');
  t.equal(s.calls.length, 2, 'refetched at half the validity');

  const long = setup((srv) => response(srv, [k1], T0 + 365 * DAY));
  await long.fetcher.publicKey('b.example', 'ed25519:k1');
  long.at(7 * DAY - 1);
  await long.fetcher.publicKey('b.example', 'ed25519:k1');
  t.equal(long.calls.length, 1, 'cached until just before 7 days');
  long.at(7 * DAY);
  await long.fetcher.publicKey('b.example', 'ed25519:k1');
  t.equal(long.calls.length, 2, 'refetched after 7 days although valid for a year');
});

t.test('failures are cached for 60 s', async (t) => {
  let broken = true;
  const s = setup((srv) => (broken ? new Error('503') : response(srv, [k1], T0 + DAY)));
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:k1'), null);
  broken = false;
  s.advance(59_999);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:k1'), null, 'still failing from the cache');
  t.equal(s.calls.length, 1, 'not refetched within 60 s');
  s.advance(1);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:k1'), k1.publicKeyBase64, 'retried after 60 s');
  t.equal(s.calls.length, 2);
});

t.test('an unknown key ID refetches at most once per 60 s', async (t) => {
  let keys = [k1];
  const s = setup((srv) => response(srv, keys, T0 + DAY));
  await s.fetcher.publicKey('a.example', 'ed25519:k1');
  s.advance(60_000);
  keys = [k1, k2]; // the server rotates in a new key
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:k2'), k2.publicKeyBase64, 'refetch finds the new key');
  t.equal(s.calls.length, 2);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:nope'), null);
  s.advance(30_000);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:nope2'), null);
  t.equal(s.calls.length, 2, 'unknown IDs within 60 s of a fetch do not refetch');
  s.advance(30_000);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:nope3'), null);
  t.equal(s.calls.length, 3, 'one refetch after 60 s');
});

t.test('a failed refetch keeps the keys that are still good', async (t) => {
  let broken = false;
  const s = setup((srv) => (broken ? new Error('down') : response(srv, [k1], T0 + DAY)));
  await s.fetcher.publicKey('a.example', 'ed25519:k1');
  broken = true;
  s.advance(60_000);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:k9'), null, 'unknown key, refetch fails');
  t.equal(s.calls.length, 2);
  t.equal(await s.fetcher.publicKey('a.example', 'ed25519:k1'), k1.publicKeyBase64, 'known key still served');
  t.equal(s.calls.length, 2);
});

t.test('concurrent lookups share one fetch', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let calls = 0;
  const fetcher = createServerKeyFetcher({
    fetchKeys: async (srv) => {
      calls++;
      await gate;
      return response(srv, [k1, k2], Date.now() + DAY);
    },
  });
  const all = Promise.all([
    fetcher.publicKey('a.example', 'ed25519:k1'),
    fetcher.publicKey('a.example', 'ed25519:k2'),
    fetcher.publicKey('a.example', 'ed25519:k1'),
  ]);
  release();
  t.same(await all, [k1.publicKeyBase64, k2.publicKeyBase64, k1.publicKeyBase64]);
  t.equal(calls, 1);
});
