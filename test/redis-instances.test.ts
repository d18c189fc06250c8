import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import sharp from 'sharp';
import { POSTGRES_URL, createTestDatabase } from './helpers/databases.js';
import { ALICE, ONE_THREAD, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { startTestS3, until } from './helpers/s3.js';

// Two media-repo instances over one Postgres database, one S3 bucket (s3rver) and one Redis (seen
// through a TCP proxy the test can stall or kill): the deployment users grow into. Shared byte
// cache, async-upload notices over pub/sub, one object for many identical uploads racing on both
// instances, and serving on when Redis hangs or disappears (MMR #350).

const REDIS_URL = process.env.MEDIA_REPO_TEST_REDIS ?? '';
const skip = !POSTGRES_URL
  ? 'MEDIA_REPO_TEST_POSTGRES is not set (two instances need one shared database)'
  : !REDIS_URL
    ? 'MEDIA_REPO_TEST_REDIS is not set'
    : false;
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const download = (id: string, q = '') => `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}${q}`;

async function upload(t: Tap, r: TestRepo, bytes: Buffer): Promise<string> {
  const res = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    headers: { 'Content-Type': 'application/x-test' },
    body: new Uint8Array(bytes),
  });
  t.equal(res.status, 200, 'upload succeeds');
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function expectBytes(t: Tap, r: TestRepo, id: string, bytes: Buffer, msg: string): Promise<void> {
  const res = await r.fetch(download(id), { token: ALICE });
  t.equal(res.status, 200, `${msg}: status`);
  t.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), `${msg}: same bytes`);
}

async function createId(r: TestRepo): Promise<string> {
  const res = await r.fetch('/_matrix/media/v1/create', {
    method: 'POST',
    token: ALICE,
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

const put = (r: TestRepo, id: string, bytes: Buffer) =>
  r.fetch(`/_matrix/media/v3/upload/${SERVER_NAME}/${id}`, {
    method: 'PUT',
    token: ALICE,
    headers: { 'Content-Type': 'application/x-test' },
    body: new Uint8Array(bytes),
  });

const stats = (r: TestRepo) => r.repo.services.redis.ring.stats;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('two instances sharing Redis', { skip }, async (t) => {
  process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION = 'true'; // the fake peer below speaks plain http
  const remoteBytes = randomBytes(5000);
  let peerHits = 0;
  const peer = createServer((req, res) => {
    if (!req.url!.startsWith('/_matrix/media/')) return void res.writeHead(404).end();
    peerHits++;
    // Slow enough that both instances ask while the first fetch is running.
    setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/x-remote' }).end(remoteBytes), 500);
  });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    peer.closeAllConnections();
    peer.close();
  });
  const peerName = `127.0.0.1:${(peer.address() as { port: number }).port}`;
  const redis = new URL(REDIS_URL);
  const proxy: TcpProxy = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
  const db = await createTestDatabase();
  const s3 = await startTestS3();
  const overrides = {
    // One thread per instance: each instance's Redis counters are read through repo.services.
    repo: ONE_THREAD,
    // A database number of our own, so a parallel run on the same Redis shares no keys.
    redis: { enabled: true, databaseNumber: 3, shards: [{ name: 'only', addr: `127.0.0.1:${proxy.port}` }] },
    datastores: [{ id: 'bucket', type: 's3', forKinds: ['all'], opts: s3.opts() }],
    federation: { allowedNetworks: ['127.0.0.1/32'] },
    // Off, so the thumbnail test below asks for one that does not exist yet.
    thumbnails: { pregenerate: false },
  };
  const a = await startTestRepo('postgres', overrides, {}, { postgresDsn: db.dsn });
  const b = await startTestRepo('postgres', overrides, {}, { postgresDsn: db.dsn });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await proxy.kill().catch(() => undefined);
    await db.drop();
    await s3.close();
  });
  // Both rings connect in the background; wait for them rather than race the first test.
  for (let i = 0; i < 50 && !(a.repo.services.redis.ring.ready() && b.repo.services.redis.ring.ready()); i++)
    await sleep(50);

  t.test('upload on A, download on B; B fills the shared cache and A reads from it', async (t) => {
    const bytes = randomBytes(4096);
    const id = await upload(t, a, bytes);
    const missesBefore = stats(b).cacheMisses;
    await expectBytes(t, b, id, bytes, 'first download on B');
    t.equal(stats(b).cacheMisses, missesBefore + 1, 'B missed the cache and read the datastore');
    await sleep(100); // the write-back is fire and forget
    const hitsBefore = stats(a).cacheHits;
    await expectBytes(t, a, id, bytes, 'download on A');
    t.equal(stats(a).cacheHits, hitsBefore + 1, 'A was served from Redis');
  });

  t.test('create on A, PUT on B: a download waiting on A answers at once (pub/sub, not the 1 s poll)', async (t) => {
    const id = await createId(a);
    const bytes = randomBytes(2048);
    const noticesBefore = stats(a).uploadNotices;
    const started = Date.now();
    const waiting = a.fetch(download(id, '?timeout_ms=5000'), { token: ALICE });
    await sleep(100); // A is parked in its wait; its first poll is due 1 s after it began
    t.equal((await put(b, id, bytes)).status, 200, 'PUT on B');
    const res = await waiting;
    const took = Date.now() - started;
    t.equal(res.status, 200, 'A answers 200');
    t.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'with the uploaded bytes');
    // A began waiting after `started`, so its first poll cannot fire before started + 1000 ms:
    // an answer before then came from the notice.
    t.ok(took < 950, `A answered ${took} ms after the request was sent, before its first 1 s poll`);
    t.ok(stats(a).uploadNotices > noticesBefore, 'A received the upload notice over pub/sub');
  });

  /** n uploads of the same bytes, alternating A and B, all at once; checks one object and n rows. */
  async function raceIdentical(t: Tap, n: number, size: number): Promise<{ ids: string[]; bytes: Buffer }> {
    const bytes = randomBytes(size);
    const hash = createHash('sha256').update(bytes).digest('hex');
    const ids = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        // A name of its own per upload: the same user re-sending the same file under the same
        // name gets its earlier media ID back, and here every upload must make a row.
        const res = await (i % 2 ? b : a).fetch(`/_matrix/media/v3/upload?filename=copy${i}.bin`, {
          method: 'POST',
          token: ALICE,
          headers: { 'Content-Type': 'application/x-test' },
          body: new Uint8Array(bytes),
        });
        if (res.status !== 200) throw new Error(`upload ${i} answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      }),
    );
    t.equal(new Set(ids).size, n, `${n} media IDs`);
    const objects = (await s3.keys()).filter((k) => k.includes(hash));
    t.equal(objects.length, 1, `one object holds the content (${objects.join(', ')})`);
    const rows = await a.repo.services.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM media WHERE sha256_hash = $1',
      [hash],
    );
    t.equal(Number(rows.rows[0]!.n), n, 'every upload has its row');
    return { ids, bytes };
  }

  t.test('100 identical uploads racing on A and B store one object in the bucket', async (t) => {
    const { ids, bytes } = await raceIdentical(t, 100, 40_000);
    // Losing racers' staging objects are deleted; the bucket ends with the one object only.
    await until('staging objects are gone', async () => (await s3.keys('staging/')).length === 0, 10_000);
    t.pass('no staging object left');
    await expectBytes(t, b, ids[0]!, bytes, 'an upload made on A, read on B');
    await expectBytes(t, a, ids[99]!, bytes, 'an upload made on B, read on A');
  });

  t.test('the same remote media asked of both instances at once is fetched once (cross-instance lock)', async (t) => {
    const path = `/_matrix/client/v1/media/download/${peerName}/remote1`;
    const [fromA, fromB] = await Promise.all([
      a.fetch(path, { token: ALICE }),
      sleep(50).then(() => b.fetch(path, { token: ALICE })),
    ]);
    t.equal(fromA.status, 200, 'A answers');
    t.equal(fromB.status, 200, 'B answers');
    t.ok(Buffer.from(await fromA.arrayBuffer()).equals(remoteBytes), 'A has the bytes');
    t.ok(Buffer.from(await fromB.arrayBuffer()).equals(remoteBytes), 'B has the bytes');
    t.equal(peerHits, 1, 'the origin was asked once');
    t.equal(stats(a).locksBusy + stats(b).locksBusy, 1, "one instance waited on the other's lock");
  });

  t.test('a thumbnail asked of both instances at once is made under the cross-instance lock', async (t) => {
    const png = await sharp(randomBytes(800 * 800 * 3), { raw: { width: 800, height: 800, channels: 3 } })
      .png()
      .toBuffer();
    const res = await a.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      token: ALICE,
      headers: { 'Content-Type': 'image/png' },
      body: new Uint8Array(png),
    });
    const id = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const before = stats(a).locksTaken + stats(b).locksTaken + stats(a).locksBusy + stats(b).locksBusy;
    const path = `/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?width=40&height=40&method=scale`;
    const [fromA, fromB] = await Promise.all([a.fetch(path, { token: ALICE }), b.fetch(path, { token: ALICE })]);
    t.equal(fromA.status, 200, 'A answers');
    t.equal(fromB.status, 200, 'B answers');
    const after = stats(a).locksTaken + stats(b).locksTaken + stats(a).locksBusy + stats(b).locksBusy;
    t.ok(after > before, 'generation went through the Redis lock');
  });

  t.test('Redis hangs: both instances keep serving, each Redis call bounded', async (t) => {
    proxy.stall();
    const bytes = randomBytes(3000);
    const t0 = Date.now();
    const id = await upload(t, a, bytes);
    await expectBytes(t, b, id, bytes, 'download on B with Redis hung');
    await expectBytes(t, a, id, bytes, 'download on A with Redis hung');
    t.ok(Date.now() - t0 < 3000, `upload and two downloads took ${Date.now() - t0} ms`);
    t.ok(stats(a).timeouts + stats(b).timeouts > 0, 'calls timed out and were counted');
  });

  t.test('Redis gone: both instances keep serving; async uploads fall back to the poll', async (t) => {
    await proxy.kill();
    await sleep(200);
    const bytes = randomBytes(1500);
    const id = await upload(t, b, bytes);
    await expectBytes(t, a, id, bytes, 'download on A with Redis down');
    const pending = await createId(b);
    const waiting = a.fetch(download(pending, '?timeout_ms=5000'), { token: ALICE });
    await sleep(100);
    t.equal((await put(b, pending, bytes)).status, 200, 'PUT on B with Redis down');
    const res = await waiting;
    t.equal(res.status, 200, 'A still answers the waiting download (by its database poll)');
    t.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'with the uploaded bytes');
    t.ok(stats(a).skipped > 0 || stats(a).failures > 0, 'A counted the calls it could not make');
  });

  t.test('Redis gone: identical uploads racing on A and B still store one object (Postgres decides)', async (t) => {
    await raceIdentical(t, 20, 20_000);
  });
});
