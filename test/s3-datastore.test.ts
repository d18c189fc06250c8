// What only the S3 datastore has: public URLs, server-side copies past the single-copy limit,
// and behaviour when S3 fails or crawls (the contract suite covers the common ground).
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { S3Datastore } from '../src/datastores/s3/store.js';
import { S3Bucket } from '../src/datastores/s3/bucket.js';
import { createS3Client } from '../src/datastores/s3/client.js';
import { copyObject } from '../src/datastores/s3/copy.js';
import { ObjectUpload } from '../src/datastores/s3/object-upload.js';
import { LeftoverCleaner } from '../src/datastores/s3/leftovers.js';
import { publicUrlFor } from '../src/datastores/s3/keys.js';
import type { StagingWriter } from '../src/datastores/datastore.js';
import { UploadSinkPool } from '../src/pools/upload-sink.js';
import { startTestS3, until } from './helpers/s3.js';

const sinks = new UploadSinkPool(1);
t.teardown(() => sinks.close());
const s3 = await startTestS3();
t.teardown(() => s3.close());
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function writeAll(w: StagingWriter, body: Buffer): Promise<void> {
  for (let i = 0; i < body.length; i += 64 * 1024) {
    if (!w.write(Buffer.from(body.subarray(i, i + 64 * 1024)))) await new Promise<void>((r) => w.onDrain(r));
  }
}

t.test('publicUrl: null without publicBaseUrl, else the key under it, escaped per segment', async (t) => {
  t.equal(new S3Datastore('a', s3.opts(), ['all'], true, 'm1', sinks).publicUrl('ab/abcd'), null);
  const ds = new S3Datastore(
    'a',
    s3.opts({ publicBaseUrl: 'https://cdn.example.org/media', redirectWhenCached: true }),
    ['all'],
    true,
    'm1',
    sinks,
  );
  t.equal(ds.publicUrl('ab/abcd'), 'https://cdn.example.org/media/ab/abcd');
  t.equal(ds.redirectWhenCached, true);
  t.equal(publicUrlFor('https://cdn.example.org/', 'x_y-z.1'), 'https://cdn.example.org/x_y-z.1');
  t.throws(() => ds.publicUrl('../etc/passwd'), /unsafe/);
});

t.test('a blob past the single-CopyObject limit is committed by a multipart copy', async (t) => {
  const bucket = new S3Bucket(createS3Client(s3.opts()), s3.opts().bucketName, 'copy');
  const ds = new S3Datastore('a', s3.opts(), ['all'], true, 'm1', sinks);
  const body = randomBytes(13 * MiB + 7);
  const w = await ds.createStaging();
  await writeAll(w, body);
  await w.finish();
  const key = (w as unknown as { key: string }).key;
  // A 6 MiB limit stands in for S3's 5 GiB: three part copies.
  await copyObject(bucket, key, 'copied', body.length, 'STANDARD', new LeftoverCleaner(bucket), 6 * MiB);
  t.ok((await ds.readAll('copied', body.length)).equals(body));
  t.same(await s3.openUploads(), [], 'the multipart copy was completed');
  await w.abort();
  await ds.delete('copied');
});

t.test('over TLS bodies are sent as UNSIGNED-PAYLOAD, and a signature-checking server accepts them', async (t) => {
  // s3rver checks SigV4 signatures; the TLS-only switch is forced on here over plain http.
  const bucket = new S3Bucket(createS3Client(s3.opts(), true), s3.opts().bucketName, 'unsigned');
  const seen: string[] = [];
  s3.onRequest = (method, _url, headers) => {
    if (method === 'PUT') seen.push(String(headers['x-amz-content-sha256']));
  };
  t.teardown(() => {
    s3.onRequest = null;
  });
  const reader = new S3Datastore('a', s3.opts(), ['all'], true, 'm1', sinks);
  for (const size of [1000, 12 * MiB]) {
    const body = randomBytes(size);
    const upload = new ObjectUpload({ bucket, key: `unsigned-${size}`, storageClass: '' });
    await upload.addPart(body.subarray(0, Math.min(size, 5 * MiB)));
    await upload.finish(body.subarray(Math.min(size, 5 * MiB)));
    t.ok((await reader.readAll(`unsigned-${size}`)).equals(body), `${size} bytes intact`);
    await reader.delete(`unsigned-${size}`);
  }
  t.ok(seen.length === 3 && seen.every((h) => h === 'UNSIGNED-PAYLOAD'), `every PUT unsigned: ${seen.join(', ')}`);
  seen.length = 0;
  const bytes = randomBytes(100);
  await reader.delete(await reader.putBlob(bytes, sha(bytes)));
  t.match(seen, [/^[0-9a-f]{64}$/], 'over plain http the payload stays signed');
});

t.test('S3 failing mid-upload: the upload fails; its leftovers go once S3 answers again', async (t) => {
  const ds = new S3Datastore('a', s3.opts({ timeoutSeconds: 2 }), ['all'], true, 'm1', sinks);
  const w = await ds.createStaging();
  let parts = 0;
  // The first two parts are stored, then S3 "goes down" for everything.
  s3.fault = { kind: 'drop', when: (method, url) => method === 'PUT' && url.includes('partNumber') && ++parts > 2 };
  const written = writeAll(w, randomBytes(30 * MiB)).then(() => w.finish());
  await t.rejects(written, /s3 datastore a: UploadPart staging\/m1-/, 'the failure names the store, operation and key');
  await until('two parts stored', async () => parts >= 2);
  s3.fault = { kind: 'down' };
  await w.abort();
  t.ok(ds.pendingCleanups > 0, 'the removal failed and is being retried');
  s3.fault = null;
  await until('cleanup', async () => ds.pendingCleanups === 0 && (await s3.openUploads()).length === 0, 30_000);
  t.same(await s3.keys(), [], 'nothing left in the bucket');
});

t.test('S3 stopped: operations fail quickly with a clear error, and work again after', async (t) => {
  const ds = new S3Datastore('a', s3.opts({ timeoutSeconds: 2 }), ['all'], true, 'm1', sinks);
  await s3.stop();
  t.teardown(() => s3.start());
  const started = Date.now();
  const w = await ds.createStaging();
  w.write(Buffer.from('hello'));
  await t.rejects(w.finish(), /s3 datastore a: PutObject staging\/m1-.* failed/);
  await w.abort();
  await t.rejects(ds.exists('abc'), /HeadObject/);
  t.ok(Date.now() - started < 10_000, `failed within the retries' time (${Date.now() - started} ms)`);
  await s3.start();
  const bytes = Buffer.from('hello again');
  const loc = await ds.putBlob(bytes, sha(bytes));
  t.ok((await ds.readAll(loc)).equals(bytes));
  await ds.delete(loc);
});

t.test('S3 slower than timeoutSeconds: the request fails in bounded time', async (t) => {
  const ds = new S3Datastore('a', s3.opts({ timeoutSeconds: 1 }), ['all'], true, 'm1', sinks);
  s3.fault = { kind: 'slow', ms: 2500 };
  t.teardown(() => {
    s3.fault = null;
  });
  const started = Date.now();
  await t.rejects(ds.exists('abc'), /TimeoutError|timed out|exceeded/i);
  const took = Date.now() - started;
  t.ok(took < 8000, `gave up after ${took} ms (3 tries of 1 s plus backoff)`);
});
