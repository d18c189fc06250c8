import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Counter, Histogram } from 'prom-client';
import { POSTGRES_URL, createTestDatabase } from './helpers/databases.js';
import {
  ALICE,
  BOB,
  ONE_THREAD,
  SERVER_NAME,
  startTestRepo,
  type TestRepo,
  type TestRequestInit,
} from './helpers/repo.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';

// Issue 16: per-client rate limits (MMR's rateLimit section), answered 429 M_LIMIT_EXCEEDED,
// keyed on the user or the (trusted) client address, with exempt lists, a byte bucket for
// downloads, and buckets shared through Redis that fall back to per-instance ones.

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
const REDIS_URL = process.env.MEDIA_REPO_TEST_REDIS ?? '';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A route that needs a user and touches no store: the client's limits (MSC4034 /config).
const CONFIG = '/_matrix/client/v1/media/config';
// An anonymous route: the legacy download of media that does not exist (404 when admitted).
const ANON = `/_matrix/media/v3/download/${SERVER_NAME}/doesnotexist`;

function limits(extra: Record<string, unknown> = {}, repo: Record<string, unknown> = {}) {
  // 0.5 tokens per second: nothing refills noticeably while a test sends its burst.
  // One thread: the tests read the limiter's counters and the database's through repo.services
  // (one budget across threads is test/http-threads.test.ts's).
  return { rateLimit: { enabled: true, requestsPerSecond: 0.5, burst: 5, ...extra }, repo: { ...ONE_THREAD, ...repo } };
}

async function statuses(r: TestRepo, n: number, path: string, init: TestRequestInit = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await r.fetch(path, init);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}
const count = (list: number[], status: number) => list.filter((s) => s === status).length;

async function counterSum(c: Counter, labels: Record<string, string> = {}): Promise<number> {
  const got = await c.get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((a, v) => a + v.value, 0);
}
async function dbQueries(r: TestRepo): Promise<number> {
  const got = await (r.repo.services.metrics.dbQueryTime as Histogram).get();
  return got.values.filter((v) => v.metricName === 'media_db_query_seconds_count').reduce((a, v) => a + v.value, 0);
}

async function started(t: Tap, overrides: Record<string, unknown>): Promise<TestRepo> {
  const r = await startTestRepo('pglite', overrides);
  t.teardown(() => r.close());
  return r;
}

t.test('burst then steady rate; the 429 body and Retry-After', async (t) => {
  const r = await started(t, limits());
  const got = await statuses(r, 8, CONFIG, { token: ALICE });
  t.same(got.slice(0, 5), [200, 200, 200, 200, 200], 'the burst passes');
  t.same(got.slice(5), [429, 429, 429], 'then every request is refused');
  const res = await r.fetch(CONFIG, { token: ALICE });
  t.equal(res.status, 429);
  const body = (await res.json()) as { errcode: string; retry_after_ms: number; error: string };
  t.equal(body.errcode, 'M_LIMIT_EXCEEDED');
  t.ok(body.retry_after_ms > 0 && body.retry_after_ms <= 2000, `retry_after_ms ${body.retry_after_ms} within 1/rps`);
  const retryAfter = Number(res.headers.get('retry-after'));
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter} s`);
  await sleep(body.retry_after_ms + 20);
  t.equal((await r.fetch(CONFIG, { token: ALICE })).status, 200, 'after retry_after_ms one more passes');
  t.equal((await r.fetch(CONFIG, { token: ALICE })).status, 429, 'and only one');
  t.ok(
    (await counterSum(r.repo.services.metrics.rateLimitRejections, { reason: 'requests', action: 'config' })) >= 4,
    'rejections are counted by reason and route',
  );
  t.equal((await r.fetch('/healthz')).status, 200, 'health probes are never limited');
  t.equal((await r.fetch('/_matrix/media/version')).status, 200, 'nor the version');
});

t.test('users have their own buckets; anonymous requests share their IP bucket', async (t) => {
  const r = await started(t, limits());
  t.equal(count(await statuses(r, 7, CONFIG, { token: ALICE }), 200), 5, 'alice is limited after her burst');
  t.equal(count(await statuses(r, 3, CONFIG, { token: BOB }), 200), 3, 'bob, on the same IP, is not');
  const anon = await statuses(r, 7, ANON);
  t.same(anon, [404, 404, 404, 404, 404, 429, 429], 'anonymous requests are limited by IP');
  t.equal((await r.fetch(CONFIG, { token: BOB })).status, 200, 'bob is still not');
});

t.test('X-Forwarded-For from an untrusted peer is ignored', async (t) => {
  const r = await started(t, limits());
  const got: number[] = [];
  for (let i = 0; i < 7; i++) {
    const res = await r.fetch(ANON, { headers: { 'X-Forwarded-For': `10.0.0.${i + 1}` } });
    got.push(res.status);
  }
  t.same(got, [404, 404, 404, 404, 404, 429, 429], 'a new X-Forwarded-For each time is still one bucket');
});

t.test('X-Forwarded-For from a trusted proxy picks the bucket', async (t) => {
  const r = await started(t, limits({}, { trustedProxies: ['127.0.0.1/32'] }));
  const from = (ip: string) => statuses(r, 6, ANON, { headers: { 'X-Forwarded-For': ip } });
  t.equal(count(await from('10.0.0.1'), 429), 1, 'one client behind the proxy is limited');
  t.equal(count(await from('10.0.0.2'), 429), 1, 'another has its own bucket');
  // A client cannot pick a bucket by writing its own hops in front: the proxy appends the peer.
  t.equal(count(await from('10.9.9.9, 10.0.0.1'), 429), 6, 'the last untrusted hop is the client');
});

t.test('exempt CIDRs and exempt user globs are never limited', async (t) => {
  const cidr = await started(t, limits({ exempt: { cidrs: ['127.0.0.0/8'], users: [] } }));
  t.equal(count(await statuses(cidr, 12, ANON), 404), 12, 'an exempt network is never limited');
  const user = await started(t, limits({ exempt: { cidrs: [], users: ['@bo?:*'] } }));
  t.equal(count(await statuses(user, 12, CONFIG, { token: BOB }), 200), 12, 'an exempt user is never limited');
  t.equal(count(await statuses(user, 7, CONFIG, { token: ALICE }), 429), 2, 'others are');
});

t.test('the byte bucket refuses the next download once a big one emptied it', async (t) => {
  const r = await started(
    t,
    limits({
      burst: 50,
      buckets: { downloads: { capacityBytes: 10000, drainBytesPerMinute: 1, overflowLimitBytes: 1000000 } },
    }),
  );
  const up = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    headers: { 'Content-Type': 'application/x-test' },
    body: new Uint8Array(randomBytes(50000)),
  });
  t.equal(up.status, 200);
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const path = `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
  const first = await r.fetch(path, { token: BOB });
  t.equal(first.status, 200, 'the first download is served whole (it may overflow once)');
  t.equal((await first.arrayBuffer()).byteLength, 50000);
  const queries = await dbQueries(r);
  const second = await r.fetch(path, { token: BOB });
  t.equal(second.status, 429, 'the second is refused');
  const body = (await second.json()) as { errcode: string; retry_after_ms: number };
  t.equal(body.errcode, 'M_LIMIT_EXCEEDED');
  t.ok(body.retry_after_ms > 0, 'with retry_after_ms');
  t.equal(await dbQueries(r), queries, 'the refused download cost no database query');
  t.equal((await r.fetch(path, { token: ALICE })).status, 200, 'another user still downloads');
  t.ok(
    (await counterSum(r.repo.services.metrics.rateLimitRejections, { reason: 'bytes' })) >= 1,
    'counted as a bytes rejection',
  );
});

t.test('rate limiting off: nothing is limited', async (t) => {
  const r = await started(t, { rateLimit: { enabled: false, requestsPerSecond: 0.5, burst: 1 } });
  t.equal(count(await statuses(r, 10, CONFIG, { token: ALICE }), 200), 10);
});

const skipShared = !POSTGRES_URL
  ? 'MEDIA_REPO_TEST_POSTGRES is not set (two instances need one shared database)'
  : !REDIS_URL
    ? 'MEDIA_REPO_TEST_REDIS is not set'
    : false;

t.test('two instances share one budget through Redis, and fall back when it goes', { skip: skipShared }, async (t) => {
  const redis = new URL(REDIS_URL);
  const proxy = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
  const db = await createTestDatabase();
  const overrides = {
    ...limits({ burst: 6, requestsPerSecond: 0.1 }),
    // A database number of our own, so parallel runs on the same Redis share no keys.
    redis: { enabled: true, databaseNumber: 7, shards: [{ name: 'only', addr: `127.0.0.1:${proxy.port}` }] },
  };
  const a = await startTestRepo('postgres', overrides, {}, { postgresDsn: db.dsn });
  const b = await startTestRepo('postgres', overrides, {}, { postgresDsn: db.dsn });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await proxy.kill().catch(() => undefined);
    await db.drop();
  });
  for (let i = 0; i < 50 && !(a.repo.services.redis.ring.ready() && b.repo.services.redis.ring.ready()); i++)
    await sleep(50);
  // A user of this run only (the Redis keys outlive the test).
  const user = `run-${randomBytes(4).toString('hex')}`;
  a.hs.tokens.set(user, { userId: `@${user}:media.test` });
  b.hs.tokens.set(user, { userId: `@${user}:media.test` });

  const got: number[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await (i % 2 ? b : a).fetch(CONFIG, { token: user });
    got.push(res.status);
  }
  const ok = count(got, 200);
  // Per instance the burst would admit 12 (6 each); shared, at most the burst. A lease taken
  // ahead and not yet spent may leave up to one token per instance unused.
  t.ok(ok <= 6 && ok >= 4, `${ok} of 12 admitted across both instances (burst 6): ${got.join(' ')}`);
  t.equal(got.at(-1), 429, 'the last ones are refused');
  const fallbacks = async () =>
    (await counterSum(a.repo.services.metrics.rateLimitFallbacks)) +
    (await counterSum(b.repo.services.metrics.rateLimitFallbacks));
  t.equal(await fallbacks(), 0, 'no fallback while Redis answers');

  // Redis hangs (connections open, nothing answered): a client without a lease waits WAIT_MS
  // at most, then the local bucket decides.
  proxy.stall();
  const slow = `slow-${randomBytes(4).toString('hex')}`;
  a.hs.tokens.set(slow, { userId: `@${slow}:media.test` });
  t.equal((await a.fetch(CONFIG, { token: slow })).status, 200, 'A serves while Redis hangs');
  t.ok((await fallbacks()) > 0, 'a slow Redis is counted as a fallback');

  await proxy.kill();
  const before = await fallbacks();
  t.equal((await a.fetch(CONFIG, { token: BOB })).status, 200, 'A serves with Redis gone');
  t.equal((await b.fetch(CONFIG, { token: BOB })).status, 200, 'B serves with Redis gone');
  t.equal(count(await statuses(a, 6, CONFIG, { token: BOB }), 429), 1, 'A limits with its own bucket');
  t.ok((await fallbacks()) > before, 'the fallback metric rises');
});
