import t from 'tap';
import { mkdtempSync, rmSync, readdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { DatastoreRegistry } from '../src/datastores/registry.js';
import { FdCache } from '../src/datastores/fd-cache.js';
import { fstatSync, readSync } from 'node:fs';
import { FileDatastore } from '../src/datastores/file.js';
import { UploadSinkPool } from '../src/pools/upload-sink.js';

const sinks = new UploadSinkPool(1);
t.teardown(() => sinks.close());
import { drivers } from './helpers/databases.js';
import { ALICE, SERVER_NAME, startTestRepo } from './helpers/repo.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('file datastore: staging is invisible until commit, then content-addressed', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-ds-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ds = new FileDatastore('a', root, ['all'], true, 'm7', sinks);
  await ds.init();
  const body = randomBytes(3 * 1024 * 1024);
  const w = await ds.createStaging();
  for (let i = 0; i < body.length; i += 65536) w.write(Buffer.from(body.subarray(i, i + 65536)));
  const digest = await w.finish();
  t.equal(w.bytesWritten, body.length);
  const h = sha(body);
  t.same(digest, { sha256: h, size: body.length }, 'the sink worker hashed exactly the bytes written');
  t.notOk(await ds.exists(`${h.slice(0, 2)}/${h.slice(2, 4)}/${h}`), 'not visible before commit');
  const loc = await ds.commit(w, h);
  t.equal(loc, `${h.slice(0, 2)}/${h.slice(2, 4)}/${h}`);
  t.ok((await ds.readAll(loc)).equals(body));
  t.same(readdirSync(join(root, '.staging')), [], 'staging emptied by the commit');
  t.throws(() => ds.pathOf('../../etc/passwd'), /unsafe/);
  t.throws(() => ds.pathOf('ab//cd'), /unsafe/);
});

t.test('the sink slots: chunks larger than all slots, slot reuse and tiny chunks hash exactly', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-ds-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ds = new FileDatastore('a', root, ['all'], true, 'm3', sinks);
  await ds.init();
  const w = await ds.createStaging();
  const big = randomBytes(5 * 1024 * 1024 + 3); // more than all 16 slots (4 MiB): queued, then sent as slots come back
  const before = Buffer.from(big);
  t.equal(w.write(big), false, 'a chunk past the high-water mark asks the producer to pause');
  const small: Buffer[] = [];
  for (let i = 0; i < 3000; i++) small.push(randomBytes(1 + (i % 700)));
  for (const c of small) w.write(c);
  t.ok(
    big.length === before.length && big.equals(before),
    'the caller keeps its buffer (copied into a slot, not detached)',
  );
  const { size, sha256 } = await w.finish();
  const all = Buffer.concat([big, ...small]);
  t.equal(size, all.length);
  t.equal(sha256, sha(all), 'the worker hashed exactly the bytes, in order');
  await w.abort();
});

t.test('fd cache: a descriptor evicted during a read stays open until released', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-fd-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'a'), 'aaaa');
  writeFileSync(join(root, 'b'), 'bbbb');
  const cache = new FdCache(1);
  const a = await cache.acquire('a', () => join(root, 'a'));
  const b = await cache.acquire('b', () => join(root, 'b')); // evicts a while a is in use
  t.equal(cache.peek('a'), undefined, 'a left the cache');
  const buf = Buffer.alloc(4);
  readSync(a.fd, buf, 0, 4, 0);
  t.equal(buf.toString(), 'aaaa', 'the in-use descriptor still reads its own file');
  a.release();
  await new Promise((r) => setTimeout(r, 50));
  t.throws(() => fstatSync(a.fd), /EBADF/, 'closed once released');
  b.release();
  t.equal(cache.peek('b'), b.fd, 'a released but cached descriptor stays open');
  cache.clear();
});

t.test('file datastore: abort removes staging; sweep removes ours and old foreign files only', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-ds-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ds = new FileDatastore('a', root, ['all'], true, 'm1', sinks);
  await ds.init();
  const w = await ds.createStaging();
  w.write(Buffer.from('partial'));
  await w.abort();
  t.same(readdirSync(join(root, '.staging')), []);
  writeFileSync(join(root, '.staging', 'm1-123-abc'), 'leftover of a crashed run');
  writeFileSync(join(root, '.staging', 'm2-456-def'), 'another instance, still uploading');
  t.equal(await ds.sweepStaging(), 1);
  t.ok(existsSync(join(root, '.staging', 'm2-456-def')), 'a live upload of another instance is kept');
  t.equal(readFileSync(join(root, '.staging', 'm2-456-def'), 'utf8'), 'another instance, still uploading');
});

t.test('pick: eligible kinds only, fewest stored bytes first, read-only never', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'media-repo-ds-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const reg = new DatastoreRegistry('m0', sinks);
  await reg.sync([
    { id: 'big', type: 'file', enabled: true, forKinds: ['all'], opts: { path: join(root, 'big') } },
    { id: 'small', type: 'file', enabled: true, forKinds: ['local_media'], opts: { path: join(root, 'small') } },
    { id: 'thumbs', type: 'file', enabled: true, forKinds: ['thumbnails'], opts: { path: join(root, 'thumbs') } },
    { id: 'ro', type: 'file', enabled: true, forKinds: [], opts: { path: join(root, 'ro') } },
    { id: 'off', type: 'file', enabled: false, forKinds: ['all'], opts: { path: join(root, 'off') } },
  ]);
  reg.setTally(
    new Map([
      ['big', 1000],
      ['small', 10],
      ['ro', 0],
      ['off', 0],
    ]),
  );
  const all = ['big', 'small', 'thumbs', 'ro', 'off'];
  t.equal(reg.pick('local_media', all)?.id, 'small');
  reg.addBytes('small', 5000);
  t.equal(reg.pick('local_media', all)?.id, 'big', 'the tally moves with commits');
  t.equal(reg.pick('thumbnails', all)?.id, 'thumbs');
  t.equal(reg.pick('remote_media', all)?.id, 'big');
  t.equal(reg.pick('local_media', ['ro', 'off']), undefined);
  t.equal(reg.pick('local_media', ['small']), reg.get('small'), "limited to the homeserver's datastores");
});

for (const d of drivers()) {
  t.test(`uploads spread over two datastores by stored bytes (${d.name})`, { skip: d.skip }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'media-repo-ds2-'));
    const r = await startTestRepo(d.name, {
      datastores: [
        { id: 'one', type: 'file', forKinds: ['all'], opts: { path: join(dir, 'one') } },
        { id: 'two', type: 'file', forKinds: ['local_media'], opts: { path: join(dir, 'two') } },
        { id: 'ro', type: 'file', forKinds: [], opts: { path: join(dir, 'ro') } },
      ],
    });
    t.teardown(async () => {
      await r.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const used: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await r.fetch('/_matrix/media/v3/upload', {
        method: 'POST',
        body: new Uint8Array(randomBytes(10_000)),
        token: ALICE,
      });
      const id = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const row = await r.repo.services.db.query<{ datastore_id: string }>(
        'SELECT datastore_id FROM media WHERE media_id = $1',
        [id],
      );
      used.push(row.rows[0]!.datastore_id);
      const dl = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
      t.equal(dl.status, 200);
      await dl.arrayBuffer();
    }
    t.same(used.filter((x) => x === 'one').length, 3, `alternates between the two writable stores: ${used.join(',')}`);
    t.same(used.filter((x) => x === 'two').length, 3);
    t.notOk(used.includes('ro'), 'a read-only datastore is never written');
  });
}
