import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createTestDatabase, drivers, type DriverName } from './helpers/databases.js';
import { createLogger } from '../src/logging/logger.js';
import { openPglite } from '../src/db/pglite.js';
import { openPostgres } from '../src/db/postgres.js';
import { migrate } from '../src/db/migrate.js';
import type { Db } from '../src/db/driver.js';
import { getMedia } from '../src/db/media.js';
import { DatastoreRegistry } from '../src/datastores/registry.js';
import { UploadSinkPool } from '../src/pools/upload-sink.js';
import type { ImportedMedia } from '../src/import/store-imported.js';
import { importMediaBatch, type BatchItem } from '../src/import/store-imported-batch.js';
import { startTestS3 } from './helpers/s3.js';

// importMediaBatch (the Synapse importer's store step): one durability flush and one
// transaction per batch. Duplicate bytes, within the batch and against blobs stored before,
// end as one blob each with every row pointing at it; an item that fails (its file vanished,
// its stream broke, its hash is not the source's) fails alone and the rest are stored.

const ORIGIN = 'batch.test';
const log = createLogger({ level: 'error', json: false, sink: () => undefined });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function openDb(name: DriverName, t: Test): Promise<Db> {
  if (name === 'pglite') {
    const db = await openPglite('memory://');
    t.teardown(() => db.close());
    return db;
  }
  const created = await createTestDatabase();
  const db = await openPostgres({ dsn: created.dsn, maxConnections: 4, maxIdleConnections: 1 }, log);
  t.teardown(async () => {
    await db.close();
    await created.drop();
  });
  return db;
}

function media(mediaId: string): ImportedMedia {
  return {
    origin: ORIGIN,
    mediaId,
    uploadName: `${mediaId}.bin`,
    contentType: 'application/octet-stream',
    userId: `@alice:${ORIGIN}`,
    creationTs: 1_600_000_000_000,
    quarantined: false,
    requiresAuth: false,
  };
}

const item = (mediaId: string, bytes: Buffer, more: Partial<BatchItem> = {}): BatchItem => ({
  media: media(mediaId),
  kind: 'local_media',
  open: () => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]),
  ...more,
});

/** Every file below `dir`, relative. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

for (const d of drivers()) {
  t.test(
    `import batch: dedup within the batch and against stored blobs, failures alone (${d.name})`,
    { skip: d.skip },
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'import-batch-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const db = await openDb(d.name, t);
      await migrate(db, log);
      const sinks = new UploadSinkPool(2);
      t.teardown(() => sinks.close());
      const datastores = new DatastoreRegistry('batchtest', sinks);
      const mediaDir = join(dir, 'media');
      await datastores.sync([
        { id: 'files', type: 'file', enabled: true, forKinds: ['all'], opts: { path: mediaDir } },
      ]);
      const deps = { db, datastores };

      const a = randomBytes(5000);
      const b = randomBytes(70_000);
      const c = randomBytes(3000);
      // A blob stored before the batch (an earlier batch).
      const first = await importMediaBatch(deps, [item('storedA', a)]);
      t.equal(first[0]!.outcome, 'imported', 'the earlier item is imported');

      const batch: BatchItem[] = [
        item('dupStoredA', a),
        item('b1', b),
        item('b2', b),
        item('vanished', c, { open: () => Readable.from(readFileSync(join(dir, 'no-such-file'))) }),
        item('c1', c),
        item('wrongHash', c, { expectSha256: sha(b) }),
        item('broken', c, {
          open: () =>
            new Readable({
              read() {
                this.push(c.subarray(0, 100));
                this.destroy(new Error('read failed halfway'));
              },
            }),
        }),
        item('b3', b),
      ];
      const out = await importMediaBatch(deps, batch, { concurrency: 3 });
      const byId = new Map(batch.map((it, i) => [it.media.mediaId, out[i]!]));
      for (const id of ['dupStoredA', 'b1', 'b2', 'c1', 'b3'])
        t.equal(byId.get(id)!.outcome, 'imported', `${id} imported`);
      t.equal(byId.get('vanished')!.outcome, 'failed', 'a file that vanished fails');
      t.match(byId.get('vanished'), { error: { code: 'ENOENT' } });
      t.equal(byId.get('broken')!.outcome, 'failed', 'a stream that breaks fails');
      t.match(byId.get('broken'), { error: { message: 'read failed halfway' } });
      t.equal(byId.get('wrongHash')!.outcome, 'mismatch', 'a hash that is not the source’s is refused');

      // Every row points at an existing blob with its bytes; each distinct blob is stored once.
      const expect: [string, Buffer][] = [
        ['storedA', a],
        ['dupStoredA', a],
        ['b1', b],
        ['b2', b],
        ['b3', b],
        ['c1', c],
      ];
      const locations = new Map<string, string>();
      for (const [id, bytes] of expect) {
        const row = await getMedia(db, ORIGIN, id);
        t.ok(row, `${id} has a row`);
        t.equal(row!.sha256, sha(bytes), `${id}: its hash`);
        const path = join(mediaDir, row!.location);
        t.ok(existsSync(path), `${id}: its blob exists`);
        t.ok(readFileSync(path).equals(bytes), `${id}: its blob holds its bytes`);
        locations.set(id, row!.location);
      }
      t.equal(locations.get('dupStoredA'), locations.get('storedA'), 'a duplicate of a stored blob reuses it');
      t.equal(locations.get('b2'), locations.get('b1'), 'duplicates within the batch share one blob');
      t.equal(locations.get('b3'), locations.get('b1'));
      for (const id of ['vanished', 'wrongHash', 'broken'])
        t.equal(await getMedia(db, ORIGIN, id), null, `${id}: no row`);
      const blobs = filesUnder(mediaDir).filter((f) => !f.startsWith('.staging/'));
      t.same(blobs.sort(), [sha(a), sha(b), sha(c)].map((h) => `${h.slice(0, 2)}/${h.slice(2, 4)}/${h}`).sort());
      t.same(readdirSync(join(mediaDir, '.staging')), [], 'no staging file is left behind');
      t.equal(statSync(join(mediaDir, locations.get('b1')!)).size, b.length);

      // A second run of the same batch stores nothing new; the failed items fail again.
      const again = await importMediaBatch(deps, batch);
      t.same(
        again.map((r) => r.outcome),
        ['exists', 'exists', 'exists', 'failed', 'exists', 'mismatch', 'failed', 'exists'],
      );
      t.equal(filesUnder(mediaDir).filter((f) => !f.startsWith('.staging/')).length, 3, 'still three blobs');
      const r = await db.query<{ n: unknown }>('SELECT count(*) AS n FROM media WHERE origin = $1', [ORIGIN]);
      t.equal(Number(r.rows[0]!.n), 6, 'six rows');

      // Items given as local files are read by the sink worker itself (appendFile): a file, one
      // that vanished after listing, and a symlink (refused: opened O_NOFOLLOW).
      const src = join(dir, 'src');
      mkdirSync(src);
      const e = randomBytes(40_000);
      writeFileSync(join(src, 'e'), e);
      writeFileSync(join(src, 'gone'), c);
      symlinkSync(join(src, 'e'), join(src, 'link'));
      const never = () => {
        throw new Error('open() is not used for a path item');
      };
      const fileItems: BatchItem[] = [
        item('fileE', e, { path: join(src, 'e'), open: never }),
        item('fileGone', c, { path: join(src, 'gone'), open: never }),
        item('fileLink', e, { path: join(src, 'link'), open: never }),
        item('fileDupB', b, { path: join(src, 'b'), open: never }),
      ];
      writeFileSync(join(src, 'b'), b);
      rmSync(join(src, 'gone'));
      const files = await importMediaBatch(deps, fileItems);
      t.same(
        files.map((x) => x.outcome),
        ['imported', 'failed', 'failed', 'imported'],
      );
      t.match(files[1], { error: { code: 'ENOENT' } }, 'the vanished file: ENOENT');
      t.match(files[2], { error: { code: 'ELOOP' } }, 'the symlink is not followed');
      const rowE = await getMedia(db, ORIGIN, 'fileE');
      t.ok(readFileSync(join(mediaDir, rowE!.location)).equals(e), 'the file item holds its bytes');
      t.equal((await getMedia(db, ORIGIN, 'fileDupB'))!.location, locations.get('b1'), 'and dedups like the rest');
      t.same(readdirSync(join(mediaDir, '.staging')), [], 'no staging file is left behind');
    },
  );
}

// Stores without commitMany (S3): each staging object is finished durable and committed on its
// own, inside the batch's transaction; dedup and failing alone hold the same. With tempPath,
// staging is a local spool that reads path items itself (appendFile) and is uploaded on commit.
for (const tempPath of [false, true]) {
  t.test(`import batch into an S3 datastore${tempPath ? ' (tempPath spool)' : ''}`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'import-batch-s3-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const s3 = await startTestS3();
    t.teardown(() => s3.close());
    const db = await openDb('pglite', t);
    await migrate(db, log);
    const sinks = new UploadSinkPool(2);
    t.teardown(() => sinks.close());
    const datastores = new DatastoreRegistry('batchtest', sinks);
    await datastores.sync([
      {
        id: 's3',
        type: 's3',
        enabled: true,
        forKinds: ['all'],
        opts: { ...s3.opts(tempPath ? { tempPath: join(dir, 'spool') } : {}) },
      },
    ]);
    const deps = { db, datastores };
    const a = randomBytes(6000);
    const b = randomBytes(90_000);
    const first = await importMediaBatch(deps, [item('storedA', a)]);
    t.equal(first[0]!.outcome, 'imported');
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'b'), b);
    const batch: BatchItem[] = [
      item('dupA', a),
      item('b1', b, { path: join(src, 'b'), open: () => Readable.from([readFileSync(join(src, 'b'))]) }),
      item('b2', b),
      item('gone', b, { path: join(src, 'gone'), open: () => Readable.from(readFileSync(join(src, 'gone'))) }),
      item('wrongHash', b, { expectSha256: sha(a) }),
    ];
    const out = await importMediaBatch(deps, batch, { concurrency: 2 });
    t.same(
      out.map((o) => o.outcome),
      ['imported', 'imported', 'imported', 'failed', 'mismatch'],
    );
    for (const [id, bytes] of [
      ['storedA', a],
      ['dupA', a],
      ['b1', b],
      ['b2', b],
    ] as const) {
      const row = await getMedia(db, ORIGIN, id);
      t.equal(row?.sha256, sha(bytes), `${id}: its row`);
      t.ok((await datastores.get('s3')!.readAll(row!.location)).equals(bytes), `${id}: its bytes in the bucket`);
    }
    t.same(
      (await s3.keys()).filter((k) => !k.startsWith('staging/')).sort(),
      [sha(a), sha(b)].sort(),
      'one object per distinct blob',
    );
    t.same(await s3.keys('staging/'), [], 'no staging object left behind');
    if (tempPath) t.same(readdirSync(join(dir, 'spool')), [], 'no spool file left behind');
  });
}
