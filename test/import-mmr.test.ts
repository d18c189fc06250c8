// `media-repo import mmr`: an MMR deployment (MMR-shaped database, objects in MMR's file layout
// and in an s3rver bucket) adopted in place, into a fresh embedded database and into a schema
// of its own in MMR's database; then served over real HTTP: every mxc byte-identical, MMR's
// thumbnails served as they were, quarantine, freeze, pinned, reserved IDs, pending async
// uploads and per-user usage kept. A second run changes nothing, a run killed mid-way resumes,
// MMR's tables are never touched, --verify reports damaged objects, bad input stops the run.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import pg from 'pg';
import { POSTGRES_URL, createTestDatabase } from './helpers/databases.js';
import { startTestS3, type TestS3 } from './helpers/s3.js';
import { ALICE, SECRET, SERVER_NAME, startTestRepo, testConfig, type TestRepo } from './helpers/repo.js';
import { FILE_DS, MMR_SCHEMA, MmrFixture, S3_DS } from './helpers/mmr-fixture.js';
import { png } from './helpers/images.js';
import { seedPglite } from './helpers/pglite-template.js';

const cli = new URL('../src/cli.js', import.meta.url).pathname;
const skip = POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set (MMR runs on Postgres)';
const REMOTE = 'remote.example';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process: s3rver, serving the CLI's reads, runs here. */
function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What the adopted deployment must show, built once. */
interface Expected {
  id: string;
  origin: string;
  bytes: Buffer;
  contentType: string;
  name: string;
}

async function buildMmr(t: Test, s3: TestS3) {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const dir = mkdtempSync(join(tmpdir(), 'mmr-adopt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fx = new MmrFixture(db.dsn, join(dir, 'mmr-media'), s3);
  await fx.sql(MMR_SCHEMA);
  const media: Expected[] = [];
  const add = async (
    e: Expected & { userId: string; datastoreId?: string; location?: string; quarantined?: boolean },
  ) => {
    const { location } = await fx.addMedia({ ...e, mediaId: e.id });
    media.push(e);
    return location;
  };
  const photo = await png(300, 200);
  await add({
    id: 'photoMmrId1',
    origin: SERVER_NAME,
    userId: '@alice:media.test',
    bytes: photo,
    contentType: 'image/png',
    name: 'photo.png',
  });
  const thumb = await png(96, 96, 3);
  await fx.addThumbnail({
    origin: SERVER_NAME,
    mediaId: 'photoMmrId1',
    width: 96,
    height: 96,
    method: 'crop',
    bytes: thumb,
    contentType: 'image/png',
  });
  const note = Buffer.from('a note kept in S3 by MMR');
  await add({
    id: 'noteInS3',
    origin: SERVER_NAME,
    userId: '@bob:media.test',
    bytes: note,
    contentType: 'text/plain',
    name: 'note.txt',
    datastoreId: S3_DS,
  });
  // MMR's dedup: a second row on the same object.
  const shared = Buffer.from('the same bytes twice');
  const loc = await add({
    id: 'sharedA',
    origin: SERVER_NAME,
    userId: '@alice:media.test',
    bytes: shared,
    contentType: 'text/plain',
    name: 'a.txt',
  });
  await add({
    id: 'sharedB',
    origin: SERVER_NAME,
    userId: '@bob:media.test',
    bytes: shared,
    contentType: 'text/plain',
    name: 'b.txt',
    location: loc,
  });
  await add({
    id: 'remoteOne',
    origin: REMOTE,
    userId: '',
    bytes: Buffer.from('cached remote media'),
    contentType: 'application/octet-stream',
    name: 'r.bin',
  });
  const bad = Buffer.from('quarantined bytes');
  await fx.addMedia({
    origin: SERVER_NAME,
    mediaId: 'quarantinedOne',
    userId: '@bob:media.test',
    bytes: bad,
    contentType: 'text/plain',
    name: 'q.txt',
    quarantined: true,
  });
  const frozen = Buffer.from('frozen: authenticated endpoints only');
  await add({
    id: 'frozenOne',
    origin: SERVER_NAME,
    userId: '@alice:media.test',
    bytes: frozen,
    contentType: 'text/plain',
    name: 'f.txt',
  });
  await fx.sql(`INSERT INTO restricted_media VALUES ($1, 'frozenOne', 'io.t2bot.requires_authentication', 'true')`, [
    SERVER_NAME,
  ]);
  await fx.sql(`INSERT INTO media_attributes VALUES ($1, 'photoMmrId1', 'pinned'), ($1, 'noteInS3', 'none')`, [
    SERVER_NAME,
  ]);
  await fx.sql(`INSERT INTO reserved_media VALUES ($1, 'purgedLongAgo', 'purged')`, [SERVER_NAME]);
  await fx.sql(`INSERT INTO expiring_media VALUES ($1, 'pendingUpload', '@alice:media.test', $2)`, [
    SERVER_NAME,
    Date.now() + 3_600_000,
  ]);
  // Enough rows for several batches.
  for (let i = 0; i < 24; i++) {
    await add({
      id: `filler${String(i).padStart(2, '0')}`,
      origin: SERVER_NAME,
      userId: '@alice:media.test',
      bytes: Buffer.from(`filler ${i}`),
      contentType: 'text/plain',
      name: `f${i}.txt`,
    });
  }
  return { fx, db, dir, media, photo, thumb, bad };
}

/** An s3rver and an MMR deployment on it and on disk, both removed after the test. */
async function mmrDeployment(t: Test) {
  const s3 = await startTestS3();
  t.teardown(() => s3.close());
  return { s3, m: await buildMmr(t, s3) };
}

function datastores(fx: MmrFixture, s3: TestS3) {
  return [
    { id: FILE_DS, type: 'file', forKinds: ['all'], opts: { path: fx.filesDir } },
    { id: S3_DS, type: 's3', forKinds: ['remote_media'], opts: s3.opts() },
  ];
}

function writeConfig(dir: string, name: string, doc: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, yaml.dump(doc));
  return file;
}

async function assertServed(t: Test, r: TestRepo, m: Awaited<ReturnType<typeof buildMmr>>) {
  for (const e of m.media) {
    const res = await r.fetch(`/_matrix/client/v1/media/download/${e.origin}/${e.id}`, { token: ALICE });
    t.equal(res.status, 200, `${e.id}: served`);
    t.ok(Buffer.from(await res.arrayBuffer()).equals(e.bytes), `${e.id}: byte-identical`);
    t.equal(res.headers.get('content-type')?.split(';')[0], e.contentType, `${e.id}: content type`);
    t.match(res.headers.get('content-disposition') ?? '', e.name, `${e.id}: filename`);
  }
  const th = await r.fetch(
    `/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/photoMmrId1?width=96&height=96&method=crop`,
    { token: ALICE },
  );
  t.equal(th.status, 200, 'thumbnail');
  t.ok(Buffer.from(await th.arrayBuffer()).equals(m.thumb), "MMR's stored thumbnail is served, not a new one");
  const q = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/quarantinedOne`, { token: ALICE });
  t.equal(q.status, 404, 'quarantined media stays refused');
  const legacy = await r.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/frozenOne`);
  t.equal(legacy.status, 404, 'frozen media: not on the unauthenticated endpoint');
  const attrs = await r.fetch(`/_matrix/media/unstable/admin/media/${SERVER_NAME}/photoMmrId1/attributes`, {
    token: SECRET,
  });
  t.same(await attrs.json(), { purpose: 'pinned' }, 'pinned attribute kept');
  // A quarantined hash stays blocked for new uploads, as in MMR.
  const again = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    body: new Uint8Array(m.bad),
    headers: { 'Content-Type': 'text/plain' },
  });
  t.equal(again.status, 403, 'an upload of quarantined bytes is refused');
  // The pending async upload can still be completed by its owner; the purged ID cannot be reused.
  const put = await r.fetch(`/_matrix/media/v3/upload/${SERVER_NAME}/pendingUpload`, {
    method: 'PUT',
    token: ALICE,
    body: 'finally',
    headers: { 'Content-Type': 'text/plain' },
  });
  t.equal(put.status, 200, 'pending async upload completed after adoption');
  const usage = await r.fetch('/_matrix/client/v1/media/usage', { token: ALICE });
  const expectedAlice = m.media
    .filter((e) => e.origin === SERVER_NAME && e.id !== 'sharedB' && e.id !== 'noteInS3')
    .reduce((n, e) => n + e.bytes.length, 0);
  t.equal(
    ((await usage.json()) as Record<string, number>)['m.storage.used'],
    expectedAlice + 'finally'.length,
    'per-user usage',
  );
  // New uploads still work and land beside MMR's objects under our own content address.
  const up = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    body: 'new after adoption',
    headers: { 'Content-Type': 'text/plain' },
  });
  t.equal(up.status, 200, 'new upload');
}

t.test('usage errors exit 2 with the usage of what was asked', { skip: false }, async (t) => {
  const bogus = await runCli(['import', 'bogus']);
  t.equal(bogus.code, 2);
  t.match(bogus.stderr, /unknown import source "bogus"/);
  const flag = await runCli(['import', 'mmr', '--no-such-flag']);
  t.equal(flag.code, 2);
  t.match(flag.stderr, /unknown flag --no-such-flag[\s\S]*Usage: media-repo import mmr/);
  const help = await runCli(['import', 'mmr', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--dry-run/);
  t.equal((await runCli(['import'])).code, 2, 'no source');
});

t.test('adopt into a fresh embedded database', { skip }, async (t) => {
  const { s3, m } = await mmrDeployment(t);
  const before = await m.fx.tablesDigest();
  const target = join(m.dir, 'target-db');
  const doc = testConfig(m.dir, 'http://127.0.0.1:9', '', {
    database: { embeddedPath: target },
    datastores: datastores(m.fx, s3),
  });
  const cfg = writeConfig(m.dir, 'adopt.yaml', doc);

  const dry = await runCli(['import', 'mmr', '-config', cfg, '--from', m.db.dsn, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /would adopt 31 row\(s\) of MMR's media/);
  t.notOk(existsSync(target), 'a dry run creates no database');
  await seedPglite(target); // an initdb'd empty cluster, as a first start would make (saves seconds)

  const first = await runCli(['import', 'mmr', '-config', cfg, '--from', m.db.dsn, '--batch-size', '5']);
  t.equal(first.code, 0, first.stderr + first.stdout);
  const done = JSON.parse(first.stdout.trim().split('\n').pop()!);
  t.same(done.phases.media, { read: 31, inserted: 31 });
  t.same(done.phases.thumbnails, { read: 1, inserted: 1 });

  const second = await runCli(['import', 'mmr', '-config', cfg, '--from', m.db.dsn, '--batch-size', '5']);
  t.equal(second.code, 0);
  const again = JSON.parse(second.stdout.trim().split('\n').pop()!);
  t.same(
    Object.values(again.phases).map((p) => (p as { inserted: number }).inserted),
    [0, 0, 0, 0, 0],
    'a second run inserts nothing',
  );
  t.equal(await m.fx.tablesDigest(), before, "MMR's tables are unchanged");

  const r = await startTestRepo('pglite', { database: { embeddedPath: target }, datastores: datastores(m.fx, s3) });
  t.teardown(() => r.close());
  await assertServed(t, r, m);
});

t.test("adopt into a schema of its own in MMR's database; killed mid-way, resumed", { skip }, async (t) => {
  const { s3, m } = await mmrDeployment(t);
  const before = await m.fx.tablesDigest();
  const plain = writeConfig(
    m.dir,
    'plain.yaml',
    testConfig(m.dir, 'http://127.0.0.1:9', m.db.dsn, { datastores: datastores(m.fx, s3) }),
  );
  const refused = await runCli(['migrate', '-config', plain]);
  t.equal(refused.code, 1, "media-repo refuses to create its tables beside MMR's");
  t.match(refused.stderr, /database\.schema/);

  const doc = testConfig(m.dir, 'http://127.0.0.1:9', m.db.dsn, {
    database: { postgres: m.db.dsn, schema: 'media_repo' },
    datastores: datastores(m.fx, s3),
  });
  const cfg = writeConfig(m.dir, 'schema.yaml', doc);
  // Slow batches, then kill -9 once a few have committed.
  const child = spawn(
    process.execPath,
    [cli, 'import', 'mmr', '-config', cfg, '--batch-size', '2', '--pause-ms', '150'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 60_000;
  while (!/"phase":"media"/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 700));
  child.kill('SIGKILL');
  await exited;
  const count = async () => {
    const c = new pg.Client({ connectionString: m.db.dsn });
    await c.connect();
    try {
      return Number((await c.query('SELECT COUNT(*) AS n FROM media_repo.media')).rows[0].n);
    } finally {
      await c.end();
    }
  };
  const partial = await count();
  t.ok(partial > 0 && partial < 31, `killed part-way (${partial} of 31 rows)`);
  const resumed = await runCli(['import', 'mmr', '-config', cfg, '--batch-size', '2']);
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(await count(), 31, 'the resumed run completes the set');
  t.equal(await m.fx.tablesDigest(), before, "MMR's tables are unchanged");

  const r = await startTestRepo(
    'postgres',
    { database: { schema: 'media_repo' }, datastores: datastores(m.fx, s3) },
    {},
    { postgresDsn: m.db.dsn },
  );
  t.teardown(() => r.close());
  await assertServed(t, r, m);
});

t.test('--verify reports missing and damaged objects; an unconfigured datastore stops the run', { skip }, async (t) => {
  const { s3, m } = await mmrDeployment(t);
  const gone = m.fx.objects.find((o) => o.datastoreId === FILE_DS && o.bytes.toString() === 'filler 3')!;
  unlinkSync(join(m.fx.filesDir, gone.location));
  const damaged = m.fx.objects.find((o) => o.datastoreId === FILE_DS && o.bytes.toString() === 'filler 4')!;
  writeFileSync(join(m.fx.filesDir, damaged.location), 'filler X');
  const target = join(m.dir, 'verify-db');
  await seedPglite(target);
  const cfg = writeConfig(
    m.dir,
    'v.yaml',
    testConfig(m.dir, 'http://127.0.0.1:9', '', {
      database: { embeddedPath: target },
      datastores: datastores(m.fx, s3),
    }),
  );
  const run = await runCli(['import', 'mmr', '-config', cfg, '--from', m.db.dsn, '--verify']);
  t.equal(run.code, 0, `the import itself succeeds ${run.stderr.slice(-2000)}`);
  const lines = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>); // stdout: JSON lines only
  t.ok(
    lines.some((l) => l.verify === 'missing' && l.location === gone.location),
    'the missing object is reported',
  );
  t.ok(
    lines.some((l) => l.verify === 'mismatch' && l.location === damaged.location),
    'the damaged object is reported',
  );
  const done = lines[lines.length - 1]!;
  t.same(done.verify, { checked: 31, missing: 1, mismatched: 1 }, 'every distinct object checked once');

  // A row naming a datastore this config lacks: nothing is written.
  await m.fx.sql(`UPDATE media SET datastore_id = 'gone-store' WHERE media_id = 'filler00'`);
  const target2 = join(m.dir, 'refused-db');
  const cfg2 = writeConfig(
    m.dir,
    'r.yaml',
    testConfig(m.dir, 'http://127.0.0.1:9', '', {
      database: { embeddedPath: target2 },
      datastores: datastores(m.fx, s3),
    }),
  );
  const refused = await runCli(['import', 'mmr', '-config', cfg2, '--from', m.db.dsn]);
  t.equal(refused.code, 1);
  t.match(refused.stdout, /datastore 'gone-store', which is not configured/);
  t.notOk(existsSync(target2), 'nothing was created');
});
