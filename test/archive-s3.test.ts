import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ArchiveReader } from '../src/archive/read-archive.js';
import type { S3Datastore } from '../src/datastores/s3/store.js';
import { manifestFor, mediaEntries, rawTgz, sha256, type FakeMedia } from './helpers/archive-files.js';
import { waitTask } from './helpers/tasks.js';
import { ALICE, SECRET, startTestRepo, type TestRepo } from './helpers/repo.js';
import { S3_BUCKET, startTestS3 } from './helpers/s3.js';

// GDPR archives over an S3 datastore (s3rver on loopback), through the admin API: an export
// records each object's S3 address as `s3_url` in MMR's form (endpoint/bucket/key; off with
// ?s3_urls=false), and an import takes an entry no part holds from the object its s3_url
// names, but only in a configured datastore, read with that datastore's credentials, and only
// when the bytes hash as the manifest says.

const ADMIN = '/_matrix/media/unstable/admin';
const HS = 'media.test';

const s3 = await startTestS3();
t.teardown(() => s3.close());
const repo: TestRepo = await startTestRepo('pglite', {
  thumbnails: { pregenerate: false },
  datastores: [{ id: 's3', type: 's3', forKinds: ['all'], opts: s3.opts() }],
});
t.teardown(() => repo.close());
const store = repo.repo.services.datastores.get('s3') as S3Datastore;

async function post(path: string, body?: Buffer): Promise<Response> {
  return repo.fetch(ADMIN + path, { method: 'POST', token: SECRET, ...(body ? { body: new Uint8Array(body) } : {}) });
}

/** Runs a user export and returns its manifest's records. */
async function exportManifest(query: string): Promise<Record<string, { s3_url: string; sha256: string }>> {
  const res = await post(`/user/@alice:${HS}/export${query}`);
  t.equal(res.status, 200);
  const { export_id, task_id } = (await res.json()) as { export_id: string; task_id: number };
  t.equal((await waitTask(repo, task_id)).error_message, '');
  const meta = (await (await repo.fetch(`${ADMIN}/export/${export_id}/metadata`)).json()) as {
    parts: { index: number; name: string }[];
  };
  const parts = [];
  for (const p of meta.parts) {
    const bytes = Buffer.from(await (await repo.fetch(`${ADMIN}/export/${export_id}/part/${p.index}`)).arrayBuffer());
    parts.push({ name: p.name, open: () => Readable.from([bytes]) });
  }
  return (await ArchiveReader.open(parts)).manifest.media;
}

const bodies = [randomBytes(4000), randomBytes(1500)];
const mxcs: string[] = [];
for (const [i, b] of bodies.entries()) {
  const res = await repo.fetch(`/_matrix/media/v3/upload?filename=f${i}.bin`, {
    method: 'POST',
    body: new Uint8Array(b),
    headers: { 'Content-Type': 'application/octet-stream' },
    token: ALICE,
  });
  mxcs.push(((await res.json()) as { content_uri: string }).content_uri);
}
const objectUrl = (b: Buffer) => `http://127.0.0.1:${s3.port}/${S3_BUCKET}/${sha256(b)}`;

t.test("an export's s3_url is the object's address at the endpoint, as MMR writes it", async (t) => {
  const media = await exportManifest('');
  for (const [i, mxc] of mxcs.entries()) {
    t.equal(media[mxc]!.s3_url, objectUrl(bodies[i]!), `${mxc}: endpoint/bucket/key`);
    t.equal(store.locationOfObjectUrl(media[mxc]!.s3_url), sha256(bodies[i]!), 'and it reads back as the location');
  }
  const without = await exportManifest('?s3_urls=false');
  for (const mxc of mxcs) t.equal(without[mxc]!.s3_url, '', '?s3_urls=false leaves it empty');
});

t.test('s3_url parsing accepts only this datastore, and only safe keys', async (t) => {
  const key = sha256(bodies[0]!);
  t.equal(store.locationOfObjectUrl(`https://127.0.0.1:${s3.port}/${S3_BUCKET}/${key}`), key, 'either scheme');
  t.equal(
    store.locationOfObjectUrl(`http://127.0.0.1:${s3.port}/${S3_BUCKET}/a/../b`),
    'b',
    'dot segments resolve as in any URL, and what is left must still be in the bucket',
  );
  for (const url of [
    `http://127.0.0.1:1/${S3_BUCKET}/${key}`,
    `http://evil.example:${s3.port}/${S3_BUCKET}/${key}`,
    `http://127.0.0.1:${s3.port}/other-bucket/${key}`,
    `http://127.0.0.1:${s3.port}/${S3_BUCKET}/..%2F..%2Fetc%2Fpasswd`,
    `http://127.0.0.1:${s3.port}/${S3_BUCKET}/../other-bucket/${key}`,
    `http://user:pw@127.0.0.1:${s3.port}/${S3_BUCKET}/${key}`,
    `http://127.0.0.1:${s3.port}/${S3_BUCKET}/${key}?versionId=1`,
    `http://127.0.0.1:${s3.port}/${S3_BUCKET}/`,
    `file:///${S3_BUCKET}/${key}`,
    'not a url',
  ])
    t.equal(store.locationOfObjectUrl(url), null, url);
});

t.test('an import reads entries no part holds from the S3 object their s3_url names', async (t) => {
  const inPart: FakeMedia = { origin: HS, mediaId: 'inpart', body: randomBytes(300) };
  const listedOnly = (mediaId: string): FakeMedia => ({ origin: HS, mediaId, body: bodies[0]! });
  const all = [inPart, ...['froms3', 'elsewhere', 'absent', 'liar', 'nourl'].map(listedOnly)];
  const absent = randomBytes(64);
  const manifest = manifestFor(`@alice:${HS}`, all, {
    [`mxc://${HS}/froms3`]: { s3_url: objectUrl(bodies[0]!) },
    // Another endpoint: never fetched, whatever it is.
    [`mxc://${HS}/elsewhere`]: { s3_url: `http://127.0.0.1:1/${S3_BUCKET}/${sha256(bodies[0]!)}` },
    // Our bucket, but no such object.
    [`mxc://${HS}/absent`]: { s3_url: objectUrl(absent), sha256: sha256(absent), size_bytes: absent.length },
    // The object exists but is not what the manifest says.
    [`mxc://${HS}/liar`]: { s3_url: objectUrl(bodies[1]!), size_bytes: bodies[1]!.length },
  });
  const tgz = rawTgz([...mediaEntries([inPart]), { name: 'manifest.json', body: manifest }]);
  const res = await post('/import', tgz);
  t.equal(res.status, 200);
  const { import_id, task_id } = (await res.json()) as { import_id: string; task_id: number };
  t.equal((await post(`/import/${import_id}/close`)).status, 200);
  const task = await waitTask(repo, task_id);
  t.equal(task.error_message, '');
  t.match(task.progress, { imported: 2, missing: 3, mismatched: 1 }, 'inpart and froms3 imported');
  const download = async (id: string) => repo.fetch(`/_matrix/media/v3/download/${HS}/${id}`);
  const got = await download('froms3');
  t.equal(got.status, 200);
  t.ok(Buffer.from(await got.arrayBuffer()).equals(bodies[0]!), 'the S3 object, byte for byte');
  t.ok(Buffer.from(await (await download('inpart')).arrayBuffer()).equals(inPart.body));
  for (const id of ['elsewhere', 'absent', 'liar', 'nourl'])
    t.equal((await download(id)).status, 404, `${id} was not imported`);
  t.same(await s3.keys('staging/'), [], 'no staging object left behind');
});
