// Quarantine and purge across two media-repo instances over one Postgres database: with Redis
// (pub/sub invalidation) and without it (the database's invalidation log, read every 2 s), the
// other instance stops serving within the stated bound and its caches forget the media. And 50
// purges racing 50 identical uploads lose no acknowledged upload.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { POSTGRES_URL, createTestDatabase } from './helpers/databases.js';
import { ALICE, BOB, ONE_THREAD, SECRET, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { INVALIDATION_POLL_MS } from '../src/cache/invalidation.js';

const REDIS_URL = process.env.MEDIA_REPO_TEST_REDIS ?? '';
const skip = !POSTGRES_URL ? 'MEDIA_REPO_TEST_POSTGRES is not set (two instances need one database)' : false;
const ADMIN = '/_matrix/media/unstable/admin';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function upload(r: TestRepo, bytes: Buffer, name: string, token = ALICE): Promise<string | null> {
  const res = await r.fetch(`/_matrix/media/v3/upload?filename=${name}`, {
    method: 'POST',
    token,
    headers: { 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  const body = (await res.json()) as { content_uri?: string };
  return res.status === 200 ? body.content_uri!.split('/').pop()! : null;
}

async function get(r: TestRepo, id: string): Promise<{ status: number; body: Buffer }> {
  const res = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** Milliseconds from now until `r` answers 404 for `id` (polled every 5 ms), or -1 past `limitMs`. */
async function msUntil404(r: TestRepo, id: string, limitMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if ((await get(r, id)).status === 404) return Date.now() - start;
    await sleep(5);
  }
  return -1;
}

async function pair(t: Tap, redis: boolean): Promise<[TestRepo, TestRepo]> {
  const db = await createTestDatabase();
  // One thread per instance: B's own row cache and invalidation counter are looked at.
  const overrides = redis
    ? { repo: ONE_THREAD, redis: { enabled: true, databaseNumber: 4, shards: [{ name: 'only', addr: REDIS_URL }] } }
    : { repo: ONE_THREAD };
  const a = await startTestRepo('postgres', overrides, {}, { postgresDsn: db.dsn });
  const b = await startTestRepo(
    'postgres',
    { ...overrides, datastores: [{ id: 'files', type: 'file', forKinds: ['all'], opts: { path: a.mediaDir } }] },
    {},
    { postgresDsn: db.dsn },
  );
  t.teardown(async () => {
    await a.close();
    await b.close();
    await db.drop();
  });
  if (redis) {
    for (let i = 0; i < 100 && !(a.repo.services.redis.ring.ready() && b.repo.services.redis.ring.ready()); i++)
      await sleep(20);
  }
  return [a, b];
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

t.test(
  'with Redis: quarantine on A, 404 on B at once; B’s caches forget it',
  { skip: skip || (!REDIS_URL && 'MEDIA_REPO_TEST_REDIS is not set') },
  async (t) => {
    const [a, b] = await pair(t, true);
    const bytes = randomBytes(2048);
    const id = (await upload(a, bytes, 'x.bin'))!;
    for (let i = 0; i < 3; i++) t.equal((await get(b, id)).status, 200, 'B serves it (and caches row and bytes)');
    t.ok(b.repo.services.mediaRows.get(SERVER_NAME, id), 'B holds the row in its cache');
    const started = Date.now();
    const res = await a.fetch(`${ADMIN}/quarantine/${SERVER_NAME}/${id}`, { method: 'POST', token: SECRET });
    t.equal(res.status, 200);
    await res.arrayBuffer();
    const took = await msUntil404(b, id, 5000);
    const total = Date.now() - started;
    t.ok(took >= 0, `B answered 404 ${took} ms after the admin call returned (${total} ms after it was sent)`);
    t.ok(took < 500, 'within the pub/sub bound (500 ms)');
    t.notOk(
      b.repo.services.mediaRows.get(SERVER_NAME, id)?.quarantined === false,
      'B’s row cache holds no unquarantined row',
    );
    t.ok(b.repo.services.invalidator.received > 0, 'B applied a change from A');
    t.comment(`quarantine on A → 404 on B: ${took} ms (Redis)`);
  },
);

t.test('without Redis (one pair of instances for both tests below)', { skip }, async (t) => {
  const [a, b] = await pair(t, false);

  t.test('404 on B within the invalidation poll bound', async (t) => {
    const id = (await upload(a, randomBytes(1500), 'y.bin'))!;
    t.equal((await get(b, id)).status, 200);
    t.equal((await get(b, id)).status, 200, 'served from B’s row cache');
    const res = await a.fetch(`${ADMIN}/quarantine/${SERVER_NAME}/${id}`, { method: 'POST', token: SECRET });
    await res.arrayBuffer();
    const took = await msUntil404(b, id, INVALIDATION_POLL_MS + 3000);
    t.ok(took >= 0, `B answered 404 after ${took} ms`);
    t.ok(took <= INVALIDATION_POLL_MS + 1000, `within the poll interval (${INVALIDATION_POLL_MS} ms) plus a query`);
    t.comment(`quarantine on A → 404 on B: ${took} ms (database log, no Redis)`);
    // A purge on A: B's row cache forgets, and B answers 404 rather than failing on the missing blob.
    const gone = (await upload(a, randomBytes(1700), 'z.bin'))!;
    t.equal((await get(b, gone)).status, 200);
    await (await a.fetch(`${ADMIN}/purge/${SERVER_NAME}/${gone}`, { method: 'POST', token: SECRET })).arrayBuffer();
    t.ok((await msUntil404(b, gone, INVALIDATION_POLL_MS + 3000)) >= 0, 'purged on A: B answers 404');
  });

  t.test('50 purges racing 50 identical uploads lose no acknowledged upload', async (t) => {
    const bytes = randomBytes(8192);
    const hash = sha(bytes);
    // 50 rows of the bytes to purge, from two users with distinct names (no "same upload" reuse).
    const old: string[] = [];
    for (let i = 0; i < 50; i++) old.push((await upload(a, bytes, `old${i}.bin`, i % 2 ? BOB : ALICE))!);
    const purges = old.map((id, i) =>
      (i % 2 ? a : b)
        .fetch(`${ADMIN}/purge/${SERVER_NAME}/${id}`, { method: 'POST', token: SECRET })
        .then(async (res) => ({ status: res.status, body: await res.text() })),
    );
    const uploads = Array.from({ length: 50 }, (_, i) => upload(i % 2 ? b : a, bytes, `new${i}.bin`));
    const [purged, acked] = await Promise.all([Promise.all(purges), Promise.all(uploads)]);
    t.same(
      purged.filter((p) => p.status !== 200),
      [],
      'every purge succeeded',
    );
    const ids = acked.filter((x): x is string => x !== null);
    t.equal(ids.length, 50, 'every upload was acknowledged');
    let good = 0;
    for (const id of ids) {
      for (const r of [a, b]) {
        const got = await get(r, id);
        if (got.status === 200 && sha(got.body) === hash) good++;
        else t.fail(`upload ${id} on ${r === a ? 'A' : 'B'}: ${got.status}, sha ${sha(got.body).slice(0, 12)}`);
      }
    }
    t.equal(good, 100, 'all 50 acknowledged uploads download whole from both instances');
    // Half were purged through B: A learns of those from the log within its poll bound.
    for (const id of old) {
      t.ok((await msUntil404(a, id, INVALIDATION_POLL_MS + 3000)) >= 0, `purged ${id.slice(0, 8)} is gone on A`);
    }
  });
});
