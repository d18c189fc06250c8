import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BlobCache, type BlobCacheOptions } from '../src/cache/blob-cache.js';
import { ALICE, ONE_THREAD, SERVER_NAME, startTestRepo } from './helpers/repo.js';

// A cache on a clock the test moves by hand.
function cacheWith(over: Partial<BlobCacheOptions> = {}) {
  const clock = { t: 1_000_000 };
  const cache = new BlobCache({
    enabled: true,
    maxSizeBytes: 1000,
    maxFileSizeBytes: 400,
    trackedMinutes: 30,
    minDownloads: 3,
    minCacheTimeSeconds: 300,
    minEvictedTimeSeconds: 60,
    now: () => clock.t,
    ...over,
  });
  return { cache, clock };
}

/** Downloads `key` n times the way a handler does: lookup, and offer the bytes when admitted. */
function download(cache: BlobCache, key: string, size: number, n = 1): boolean {
  let hit = false;
  for (let i = 0; i < n; i++) {
    const r = cache.lookup(key, size);
    hit = r.hit;
    if (!r.hit && r.admit) cache.offer(key, Buffer.alloc(size, key));
  }
  return hit;
}

t.test('admits a blob only after minDownloads downloads within trackedMinutes', async (t) => {
  const { cache, clock } = cacheWith();
  t.same(cache.lookup('a', 100), { hit: false, admit: false });
  t.same(cache.lookup('a', 100), { hit: false, admit: false });
  const third = cache.lookup('a', 100);
  t.same(third, { hit: false, admit: true }, 'the third download earns admission');
  t.ok(cache.offer('a', Buffer.alloc(100, 1)));
  const hit = cache.lookup('a', 100);
  t.ok(hit.hit && hit.bytes.length === 100, 'the fourth is served from memory');
  t.equal(cache.usedBytes, 100);

  download(cache, 'b', 100, 2);
  clock.t += 31 * 60_000;
  t.same(cache.lookup('b', 100), { hit: false, admit: false }, 'downloads outside the window start a new count');
});

t.test('never admits files above maxFileSizeBytes', async (t) => {
  const { cache } = cacheWith();
  download(cache, 'big', 401, 10);
  t.equal(cache.count, 0);
  t.notOk(cache.offer('big', Buffer.alloc(401)), 'offer refuses it too');
});

t.test('evicts less popular, then smaller entries first, only past minCacheTime', async (t) => {
  const { cache, clock } = cacheWith();
  download(cache, 'cold-small', 200, 3);
  download(cache, 'cold-large', 300, 3);
  download(cache, 'warm', 300, 6);
  t.equal(cache.usedBytes, 800);
  // A newcomer needing 300 bytes (200 free) before the others are old enough: refused.
  download(cache, 'early', 300, 7);
  t.equal(cache.count, 3, 'nothing is evicted before minCacheTimeSeconds');
  t.notOk(download(cache, 'early', 300), 'and the refused newcomer stays out');

  clock.t += 301_000;
  // Refused at 3 downloads (cold-small is as popular), admitted at 6 when its count doubled.
  download(cache, 'new', 300, 6);
  t.ok(download(cache, 'new', 300), 'newcomer admitted');
  t.notOk(download(cache, 'cold-small', 200), 'the least popular and smallest went first');
  t.ok(download(cache, 'cold-large', 300), 'one eviction was enough: the larger cold entry stays');
  t.ok(download(cache, 'warm', 300), 'the popular entry stays');
  t.ok(cache.usedBytes <= 1000);
});

t.test('does not evict entries as popular as the newcomer; admits nothing then', async (t) => {
  const { cache, clock } = cacheWith();
  download(cache, 'x', 400, 10);
  download(cache, 'y', 400, 10);
  clock.t += 301_000;
  download(cache, 'z', 400, 4);
  t.notOk(download(cache, 'z', 400), 'z is not cached');
  t.ok(download(cache, 'x', 400) && download(cache, 'y', 400), 'x and y stay');
});

t.test('an evicted blob cannot come back for minEvictedTimeSeconds', async (t) => {
  const { cache, clock } = cacheWith({ maxSizeBytes: 400, minCacheTimeSeconds: 10 });
  download(cache, 'old', 400, 3);
  clock.t += 11_000;
  // Refused at 3 downloads (old is as popular), looked at again at 6 (doubled): old goes.
  download(cache, 'new', 400, 6);
  t.ok(download(cache, 'new', 400), 'new replaced old');
  download(cache, 'old', 400, 20);
  t.notOk(download(cache, 'old', 400), 'old stays out while cooling down, however popular');
  clock.t += 61_000;
  download(cache, 'old', 400);
  t.ok(download(cache, 'old', 400), 'after the cooldown it is admitted again');
  t.ok(cache.usedBytes <= 400);
});

t.test('byte bound holds under random churn', async (t) => {
  const { cache, clock } = cacheWith({
    maxSizeBytes: 50_000,
    maxFileSizeBytes: 20_000,
    minDownloads: 2,
    minCacheTimeSeconds: 5,
    minEvictedTimeSeconds: 2,
  });
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let max = 0;
  for (let i = 0; i < 20_000; i++) {
    clock.t += Math.floor(rnd() * 200);
    const id = Math.floor(rnd() ** 2 * 300);
    download(cache, `k${id}`, 500 + ((id * 7919) % 19_000));
    max = Math.max(max, cache.usedBytes);
  }
  t.ok(max <= 50_000, `peak ${max} bytes within maxSizeBytes`);
  t.ok(max > 25_000, 'and the cache was actually used');
});

t.test('a disabled cache holds nothing and counts nothing', async (t) => {
  const { cache } = cacheWith({ enabled: false });
  t.notOk(cache.enabled);
  download(cache, 'a', 100, 10);
  t.notOk(cache.offer('a', Buffer.alloc(100)));
  cache.fill('a', 100, async () => Buffer.alloc(100));
  t.equal(cache.usedBytes, 0);
  t.equal(cache.count, 0);
  t.equal((cache as unknown as { tracker: unknown }).tracker, null, 'no download tracker');
});

t.test('fills read at most maxFileSizeBytes at once, one read per blob', async (t) => {
  const { cache } = cacheWith();
  const reads: string[] = [];
  const release: (() => void)[] = [];
  const read = (key: string, size: number) => () => {
    reads.push(key);
    return new Promise<Buffer>((res) => release.push(() => res(Buffer.alloc(size))));
  };
  cache.fill('a', 300, read('a', 300));
  cache.fill('a', 300, read('a', 300));
  cache.fill('b', 300, read('b', 300));
  t.same(reads, ['a'], 'a second fill of a, and b (600 > 400 in flight), are skipped');
  release.forEach((r) => r());
  await new Promise((r) => setImmediate(r));
  cache.fill('b', 300, read('b', 300));
  t.same(reads, ['a', 'b'], 'b may fill once a has landed');
});

t.test('two mxcs with the same content share one entry', async (t) => {
  const { cache } = cacheWith();
  // The handler looks up by sha256, so both mxcs land on one key.
  download(cache, 'same-sha', 100, 3);
  t.equal(cache.count, 1);
  t.ok(download(cache, 'same-sha', 100));
});

t.test('HTTP: a hot download comes from memory, with Range and ETag, and no database query', async (t) => {
  const r = await startTestRepo('pglite', {
    repo: ONE_THREAD, // the cache's own counters are read (each HTTP thread has its share)
    downloads: { smallFileBytes: 4096, cache: { enabled: true, minDownloads: 2 } },
  });
  t.teardown(() => r.close());
  for (const [n, size] of [1000, 300_000].entries()) {
    const body = randomBytes(size);
    const up = await r.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'Content-Type': 'image/png' },
      token: ALICE,
    });
    const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const path = `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
    const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
    for (let i = 0; i < 2; i++)
      t.ok(
        Buffer.from(await (await r.fetch(path, { token: ALICE })).arrayBuffer()).equals(body),
        `cold download ${i + 1}`,
      );
    // The large blob is filled by one extra read in the background.
    for (let i = 0; i < 200 && r.repo.services.blobCache.count < n + 1; i++)
      await new Promise((res) => setTimeout(res, 10));

    t.equal(r.repo.services.blobCache.count, n + 1, 'admitted after minDownloads (2)');
    // Prove memory: the blob file is gone and the database counts every query.
    for (const f of readdirSync(r.mediaDir, { recursive: true, withFileTypes: true })) {
      if (f.isFile() && !f.parentPath.includes('.staging')) rmSync(join(f.parentPath, f.name));
    }
    const db = r.repo.services.db;
    let queries = 0;
    const query = db.query.bind(db);
    db.query = ((...a: Parameters<typeof db.query>) => (queries++, query(...a))) as typeof db.query;

    const full = await r.fetch(path, { token: ALICE });
    t.equal(full.status, 200);
    t.equal(full.headers.get('etag'), etag);
    t.ok(Buffer.from(await full.arrayBuffer()).equals(body), `${size} bytes served from memory`);
    const part = await r.fetch(path, { token: ALICE, headers: { Range: 'bytes=10-99' } });
    t.equal(part.status, 206);
    t.equal(part.headers.get('content-range'), `bytes 10-99/${size}`);
    t.ok(Buffer.from(await part.arrayBuffer()).equals(body.subarray(10, 100)), 'range sliced from the cached bytes');
    const cond = await r.fetch(path, { token: ALICE, headers: { 'If-None-Match': etag } });
    t.equal(cond.status, 304);
    t.equal(queries, 0, 'hot downloads ran no database query');
    db.query = query;
  }
  t.ok(r.repo.services.blobCache.usedBytes === 301_000);
});
