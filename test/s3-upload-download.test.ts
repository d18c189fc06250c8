// Upload and download over real HTTP with an S3 datastore (s3rver on loopback): bytes, Range,
// dedup into one object, and what a client and the bucket see when S3 is down or slow.
// PGlite only: nothing here depends on the database driver.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { ALICE, BOB, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { startTestS3, until } from './helpers/s3.js';
import type { S3Datastore } from '../src/datastores/s3/store.js';

const MiB = 1024 * 1024;
const s3 = await startTestS3();
t.teardown(() => s3.close());
const r = await startTestRepo('pglite', {
  datastores: [{ id: 's3', type: 's3', forKinds: ['all'], opts: s3.opts({ timeoutSeconds: 1 }) }],
  uploads: { minBytes: 1, maxBytes: 64 * MiB },
});
t.teardown(() => r.close());
const store = r.repo.services.datastores.get('s3') as S3Datastore;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function upload(repo: TestRepo, body: Buffer, token = ALICE): Promise<Response> {
  return repo.fetch('/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array(body), token });
}

async function uploadId(body: Buffer, token = ALICE): Promise<string> {
  const res = await upload(r, body, token);
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

const download = (id: string, headers: Record<string, string> = {}) =>
  r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE, headers });

async function mediaRows(): Promise<number> {
  const res = await r.repo.services.db.query<{ n: string }>('SELECT count(*) AS n FROM media');
  return Number(res.rows[0]!.n);
}

async function bucketIsClean(): Promise<boolean> {
  return (
    store.pendingCleanups === 0 && (await s3.keys('staging/')).length === 0 && (await s3.openUploads()).length === 0
  );
}

t.test('round trip: small and multipart uploads come back byte for byte, with Range', async (t) => {
  for (const size of [5000, 3 * MiB, 12 * MiB + 3]) {
    const body = randomBytes(size);
    const id = await uploadId(body);
    t.ok(await s3.keys(sha(body)).then((k) => k.length === 1), `stored under its hash (${size} bytes)`);
    const dl = await download(id);
    t.equal(dl.status, 200);
    t.equal(dl.headers.get('content-length'), String(size));
    t.ok(Buffer.from(await dl.arrayBuffer()).equals(body), `whole body (${size} bytes)`);
    const mid = Math.floor(size / 2);
    const midEnd = Math.min(size - 1, mid + 99_999);
    for (const [range, start, end] of [
      ['bytes=0-0', 0, 0],
      [`bytes=${mid}-${midEnd}`, mid, midEnd],
      [`bytes=${size - 1}-`, size - 1, size - 1],
      ['bytes=-5', size - 5, size - 1],
    ] as const) {
      const part = await download(id, { Range: range });
      t.equal(part.status, 206, range);
      t.equal(part.headers.get('content-range'), `bytes ${start}-${end}/${size}`);
      t.ok(Buffer.from(await part.arrayBuffer()).equals(body.subarray(start, end + 1)), `${range} bytes (${size})`);
    }
  }
  t.ok(await bucketIsClean(), 'no staging objects or open uploads left');
});

t.test('two identical uploads: two media IDs, one object', async (t) => {
  const body = randomBytes(7 * MiB);
  const before = await s3.keys();
  const a = await uploadId(body, ALICE);
  const b = await uploadId(body, BOB);
  t.not(a, b);
  const added = (await s3.keys()).filter((k) => !before.includes(k));
  t.same(added, [sha(body)], 'one object, under the hash');
  const rows = await r.repo.services.db.query<{ location: string }>(
    'SELECT DISTINCT location FROM media WHERE sha256_hash = $1',
    [sha(body)],
  );
  t.same(
    rows.rows.map((x) => x.location),
    [sha(body)],
    'both rows point at it',
  );
  t.ok(Buffer.from(await (await download(b)).arrayBuffer()).equals(body));
});

async function expectCleanFailure(t: Test, res: Response, rowsBefore: number): Promise<void> {
  t.ok(res.status >= 500 && res.status < 600, `a 5xx (${res.status})`);
  const err = (await res.json()) as { errcode?: string; error?: string };
  t.equal(typeof err.errcode, 'string', `errcode ${err.errcode}`);
  t.equal(typeof err.error, 'string', `error ${err.error}`);
  t.equal(await mediaRows(), rowsBefore, 'no media row');
}

t.test('S3 stopped: a clean Matrix 5xx, no row, nothing leaked, and the server goes on', async (t) => {
  const rows = await mediaRows();
  await s3.stop();
  await expectCleanFailure(t, await upload(r, randomBytes(2000)), rows);
  await expectCleanFailure(t, await upload(r, randomBytes(9 * MiB)), rows);
  const cfg = await r.fetch('/_matrix/client/v1/media/config', { token: ALICE });
  t.equal(cfg.status, 200, 'other endpoints still answer');
  await cfg.arrayBuffer();
  await s3.start();
  await until('the bucket to be clean', bucketIsClean);
  t.pass('no staging object or multipart upload leaked');
  const body = randomBytes(4000);
  t.ok(Buffer.from(await (await download(await uploadId(body))).arrayBuffer()).equals(body), 'uploads work again');
});

t.test('S3 dropping connections mid-upload: 5xx, no row; leftovers removed once it recovers', async (t) => {
  const rows = await mediaRows();
  let parts = 0;
  s3.fault = {
    kind: 'drop',
    when: (method, url) =>
      (method === 'PUT' && url.includes('partNumber') && ++parts > 1) || (parts > 1 && method === 'DELETE'),
  };
  await expectCleanFailure(t, await upload(r, randomBytes(20 * MiB)), rows);
  t.ok(parts > 1, 'it failed mid-way, after a part was stored');
  s3.fault = null;
  await until('the bucket to be clean', bucketIsClean);
  t.pass('the multipart upload was aborted in the background');
});

t.test('S3 slower than timeoutSeconds: a 5xx in bounded time, no row, nothing leaked', async (t) => {
  const rows = await mediaRows();
  s3.fault = { kind: 'slow', ms: 1500 };
  const started = Date.now();
  await expectCleanFailure(t, await upload(r, randomBytes(3000)), rows);
  t.ok(Date.now() - started < 15_000, `answered after ${Date.now() - started} ms`);
  s3.fault = null;
  await until('the bucket to be clean', bucketIsClean);
  t.pass('clean');
});
