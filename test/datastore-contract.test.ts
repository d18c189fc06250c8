// One contract, every datastore: the same checks run against the file datastore, the S3
// datastore streaming into a staging object, and the S3 datastore spooling to tempPath, each
// against its real backend (a directory; s3rver on loopback).
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Datastore, StagingWriter } from '../src/datastores/datastore.js';
import { FileDatastore } from '../src/datastores/file.js';
import { S3Datastore } from '../src/datastores/s3/store.js';
import { UploadSinkPool } from '../src/pools/upload-sink.js';
import { S3_BUCKET, startTestS3 } from './helpers/s3.js';

const sinks = new UploadSinkPool(1);
t.teardown(() => sinks.close());
const s3 = await startTestS3();
t.teardown(() => s3.close());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

interface Variant {
  name: string;
  make(tag: string): Promise<Datastore>;
  /** Staging leftovers: files, staging objects, open multipart uploads. */
  staged(): Promise<string[]>;
  /** Committed blobs. */
  blobs(): Promise<string[]>;
  /** Backdates every staging leftover past the foreign-staging age. */
  ageStaging(): void;
  /** The location a blob with this hash gets. */
  address(sha256: string): string;
}

function walk(dir: string, skip: string[] = []): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (skip.includes(e.name)) continue;
    if (e.isDirectory()) out.push(...walk(join(dir, e.name)).map((p) => `${e.name}/${p}`));
    else out.push(e.name);
  }
  return out.sort();
}

const HOURS_AGO = (h: number) => new Date(Date.now() - h * 3600_000);

function backdate(dir: string, suffix = ''): void {
  for (const name of readdirSync(dir))
    if (name.endsWith(suffix)) utimesSync(join(dir, name), HOURS_AGO(2), HOURS_AGO(2));
}

const root = mkdtempSync(join(tmpdir(), 'media-repo-contract-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const s3Keys = async () => (await s3.keys()).filter((k) => !k.startsWith('staging/'));
const s3Staged = async () => [...(await s3.keys('staging/')), ...(await s3.openUploads())];
// s3rver keeps each object in <dir>/<bucket>/<key>._S3rver_object and dates it by that file.
const s3StagingDir = join(s3.dir, S3_BUCKET, 'staging');

const variants: Variant[] = [
  {
    name: 'file',
    make: async (tag) => {
      const ds = new FileDatastore('files', join(root, 'files'), ['all'], true, tag, sinks);
      await ds.init();
      return ds;
    },
    staged: async () => walk(join(root, 'files', '.staging')),
    blobs: async () => walk(join(root, 'files'), ['.staging']),
    ageStaging: () => backdate(join(root, 'files', '.staging')),
    address: (h) => `${h.slice(0, 2)}/${h.slice(2, 4)}/${h}`,
  },
  {
    name: 's3 (streamed to a staging object)',
    make: async (tag) => new S3Datastore('s3', s3.opts(), ['all'], true, tag, sinks),
    staged: s3Staged,
    blobs: s3Keys,
    ageStaging: () => backdate(s3StagingDir, '._S3rver_object'),
    address: (h) => h,
  },
  {
    name: 's3 (spooled to tempPath)',
    make: async (tag) => {
      const ds = new S3Datastore(
        's3',
        s3.opts({ tempPath: join(root, 'spool'), prefixLength: 2 }),
        ['all'],
        true,
        tag,
        sinks,
      );
      await ds.init();
      return ds;
    },
    staged: async () => [...walk(join(root, 'spool')), ...(await s3Staged())],
    blobs: s3Keys,
    ageStaging: () => backdate(join(root, 'spool')),
    address: (h) => `${h.slice(0, 2)}/${h}`,
  },
];

/** Writes like the upload pipeline: 64 KiB chunks (copies), pausing while the writer asks to. */
async function writeAll(w: StagingWriter, body: Buffer): Promise<void> {
  for (let i = 0; i < body.length; i += 64 * 1024) {
    if (!w.write(Buffer.from(body.subarray(i, i + 64 * 1024)))) await new Promise<void>((r) => w.onDrain(r));
  }
}

async function stage(ds: Datastore, body: Buffer): Promise<{ w: StagingWriter; sha256: string; size: number }> {
  const w = await ds.createStaging();
  await writeAll(w, body);
  return { w, ...(await w.finish()) };
}

async function drain(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function readRange(ds: Datastore, loc: string, start: number, end: number): Promise<Buffer> {
  if (ds.readAt) return Buffer.from(await ds.readAt(loc, start, end - start + 1));
  return drain(ds.openStream(loc, { start, end }));
}

for (const v of variants) {
  t.test(v.name, async (t) => {
    const ds = await v.make('m1');
    await ds.sweepStaging();

    for (const [label, size] of [
      ['empty', 0],
      ['1 byte', 1],
      ['1 MiB', MiB],
      ['12 MiB (multipart on S3)', 12 * MiB],
    ] as const) {
      t.test(`${label}: hash and size, then identical bytes by every read path`, async (t) => {
        const body = randomBytes(size);
        const { w, sha256, size: got } = await stage(ds, body);
        t.equal(sha256, sha(body));
        t.equal(got, size);
        t.equal(w.bytesWritten, size);
        t.notOk(await ds.exists(v.address(sha256)), 'nothing under the content address before commit');
        const loc = await ds.commit(w, sha256);
        t.ok(await ds.exists(loc));
        t.same(await v.staged(), [], 'commit leaves no staging behind');
        t.ok((await ds.readAll(loc)).equals(body), 'readAll');
        t.ok((await ds.readAll(loc, size)).equals(body), 'readAll with the size from the row');
        if (size > 0) {
          t.ok((await drain(ds.openStream(loc, { start: 0, end: size - 1 }))).equals(body), 'openStream, whole range');
          t.ok((await drain(ds.openStream(loc))).equals(body), 'openStream, no range');
          const mid = Math.floor(size / 2);
          for (const [start, end, what] of [
            [0, 0, 'first byte'],
            [mid, Math.min(size - 1, mid + 70_000), 'middle'],
            [size - 1, size - 1, 'last byte'],
            [0, size - 1, 'whole'],
          ] as const) {
            t.ok(
              (await readRange(ds, loc, start, end)).equals(body.subarray(start, end + 1)),
              `range ${what} (${start}-${end})`,
            );
            t.ok(
              (await drain(ds.openStream(loc, { start, end }))).equals(body.subarray(start, end + 1)),
              `stream range ${what}`,
            );
          }
        }
        await ds.delete(loc);
        t.notOk(await ds.exists(loc), 'gone after delete');
        await ds.delete(loc); // deleting twice is fine
      });
    }

    t.test('abort leaves nothing, at any point of the upload', async (t) => {
      for (const size of [0, 1000, 12 * MiB]) {
        const w = await ds.createStaging();
        await writeAll(w, randomBytes(size));
        if (size > 5 * MiB) t.not((await v.staged()).length, 0, 'a large upload is staged while it is written');
        await w.abort();
        await w.abort(); // twice is fine
        t.same(await v.staged(), [], `aborted mid-write (${size} bytes)`);
        const done = await stage(ds, randomBytes(size));
        await done.w.abort();
        t.same(await v.staged(), [], `aborted after finish (${size} bytes)`);
      }
      t.same(await v.blobs(), [], 'and no blob appeared');
    });

    t.test('a missing blob: exists false, reads fail', async (t) => {
      const loc = v.address(sha(Buffer.from('never stored')));
      t.equal(await ds.exists(loc), false);
      await t.rejects(ds.readAll(loc));
      await t.rejects(drain(ds.openStream(loc, { start: 0, end: 10 })));
    });

    t.test('putBlob stores a known-hash blob under its content address', async (t) => {
      const bytes = randomBytes(3000);
      const loc = await ds.putBlob!(bytes, sha(bytes));
      t.equal(loc, v.address(sha(bytes)));
      t.ok((await ds.readAll(loc, bytes.length)).equals(bytes));
      t.same(await v.staged(), []);
      await ds.delete(loc);
    });

    t.test('committing the same content twice is idempotent', async (t) => {
      const body = randomBytes(6 * MiB + 5);
      const a = await stage(ds, body);
      const b = await stage(ds, body);
      const locA = await ds.commit(a.w, a.sha256);
      const locB = await ds.commit(b.w, b.sha256);
      t.equal(locA, locB, 'one content address');
      t.same(
        await v.blobs(),
        (await v.blobs()).filter((k) => k.includes(a.sha256)),
        'one blob',
      );
      t.ok((await ds.readAll(locA)).equals(body), 'intact');
      t.same(await v.staged(), []);
      await ds.delete(locA);
    });

    t.test('sweepStaging: ours always, other instances only when old', async (t) => {
      // Leftovers of a "crashed" run of this instance: one finished, one mid-upload.
      const crashed = await v.make('m1');
      await stage(crashed, randomBytes(2000));
      const open = await crashed.createStaging();
      await writeAll(open, randomBytes(11 * MiB));
      // Another instance's upload in progress, and an old one of another instance.
      const other = await v.make('m2');
      await stage(other, randomBytes(100));
      t.ok((await v.staged()).length >= 2, 'leftovers present');
      const fresh = await v.make('m1');
      t.ok((await fresh.sweepStaging()) >= 2, 'our leftovers removed');
      const left = await v.staged();
      t.equal(left.length, 1, `another instance's young upload is kept: ${left.join(', ')}`);
      v.ageStaging();
      t.equal(await fresh.sweepStaging(), 1, 'and removed once old');
      t.same(await v.staged(), []);
      t.same(await v.blobs(), [], 'sweeping never touches blobs');
    });
  });
}
