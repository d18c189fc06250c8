import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, rmSync, readdirSync, existsSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { FileDatastore } from '../src/datastores/file.js';
import { DatastoreRegistry } from '../src/datastores/registry.js';
import { UploadSinkPool } from '../src/pools/upload-sink.js';
import { placeBlob } from '../src/pipelines/steps/place-blob.js';
import { drivers } from './helpers/databases.js';
import { ALICE, SERVER_NAME, startTestRepo } from './helpers/repo.js';

// Uploads link their bytes at the content address before the transaction (on the sink
// thread), so the directory flush is not spent holding the database. These tests cover what
// that early link must still get right: durability of the link, a blob removed between the
// link and the transaction, dedup across datastores, and no staging names left behind.

const sinks = new UploadSinkPool(1);
t.teardown(() => sinks.close());
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const addressOf = (h: string) => `${h.slice(0, 2)}/${h.slice(2, 4)}/${h}`;

async function store(t: Test) {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-prestage-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ds = new FileDatastore('a', root, ['all'], true, 'm3', sinks);
  await ds.init();
  return { root, ds };
}

async function staged(ds: FileDatastore, bytes: Buffer) {
  const w = await ds.createStaging();
  w.write(Buffer.from(bytes));
  return { w, done: await w.finish({ prestage: true }) };
}

t.test('finish({ prestage }) links the bytes at their address and keeps the staging name', async (t) => {
  const { root, ds } = await store(t);
  const bytes = randomBytes(4096);
  const h = sha(bytes);
  const first = await staged(ds, bytes);
  t.same(first.done, { sha256: h, size: bytes.length, prestaged: { location: addressOf(h), created: true } });
  t.ok((await ds.readAll(addressOf(h))).equals(bytes), 'the address holds the bytes');
  t.equal(readdirSync(join(root, '.staging')).length, 1, 'the staging name is still there (a second link)');
  t.equal(statSync(join(root, addressOf(h))).nlink, 2, 'one file, two names');
  const second = await staged(ds, bytes);
  t.same(second.done.prestaged, { location: addressOf(h), created: false }, 'the same bytes again: already there');
  await first.w.abort();
  await second.w.abort();
  t.same(readdirSync(join(root, '.staging')), [], 'aborting drops only the staging names');
  t.ok((await ds.readAll(addressOf(h))).equals(bytes), 'the blob stays');
});

t.test('a blob removed between the early link and the transaction is put back from staging', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-prestage-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const registry = new DatastoreRegistry('m3', sinks);
  await registry.sync([{ id: 'a', type: 'file', forKinds: ['all'], opts: { path: root } } as never]);
  const ds = registry.get('a') as FileDatastore;
  const bytes = randomBytes(2048);
  const h = sha(bytes);
  const { w, done } = await staged(ds, bytes);
  // What a purge of the hash's last row (or the orphan collector) does meanwhile.
  unlinkSync(join(root, addressOf(h)));
  const placed = await placeBlob(registry, {
    ds,
    staging: w,
    sha256: h,
    size: bytes.length,
    candidates: [],
    prestaged: done.prestaged,
  });
  t.same(placed, { datastoreId: 'a', location: addressOf(h), created: true });
  t.ok((await ds.readAll(addressOf(h))).equals(bytes), 'the bytes are back at the address');
  await w.abort();
  t.ok(existsSync(join(root, addressOf(h))), 'and stay after the staging name is dropped');
});

for (const d of drivers()) {
  t.test(`the same bytes uploaded into two datastores are stored once (${d.name})`, { skip: d.skip }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'media-repo-prestage-ds-'));
    const r = await startTestRepo(d.name, {
      datastores: [
        { id: 'one', type: 'file', forKinds: ['all'], opts: { path: join(dir, 'one') } },
        { id: 'two', type: 'file', forKinds: ['local_media'], opts: { path: join(dir, 'two') } },
      ],
    });
    t.teardown(async () => {
      await r.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const bytes = randomBytes(20_000);
    const h = sha(bytes);
    const ids: string[] = [];
    // Uploads go to the store with fewer bytes, so the second copy is linked into the other
    // store first; dedup must then drop that link and point at the first store's blob.
    for (const name of ['a.bin', 'b.bin', 'c.bin']) {
      const res = await r.fetch(`/_matrix/media/v3/upload?filename=${name}`, {
        method: 'POST',
        body: new Uint8Array(bytes),
        token: ALICE,
      });
      t.equal(res.status, 200);
      ids.push(((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!);
    }
    const rows = await r.repo.services.db.query<{ datastore_id: string; location: string }>(
      'SELECT DISTINCT datastore_id, location FROM media WHERE sha256_hash = $1',
      [h],
    );
    t.equal(rows.rows.length, 1, 'every row points at one blob');
    const [only] = rows.rows;
    const other = only!.datastore_id === 'one' ? 'two' : 'one';
    t.ok(existsSync(join(dir, only!.datastore_id, addressOf(h))), 'the blob is where the rows say');
    t.notOk(existsSync(join(dir, other, addressOf(h))), 'the other store kept no copy');
    for (const id of ids) {
      const dl = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(bytes), `${id} downloads byte-identical`);
    }
    // Each staging name (a second link to its blob) is dropped before the answer.
    const left = () => ['one', 'two'].flatMap((s) => readdirSync(join(dir, s, '.staging')));
    t.same(left(), [], 'no staging names left behind');
  });
}
