// Datastore admin API and transfers over real HTTP: a file datastore and an S3 one (s3rver on
// loopback). Transfers file → S3 → file with every blob's hash checked after each and downloads
// checked while they run; a transfer cut off by a stop resumes at the next start; and the
// check-datastores CLI finds a planted orphan and a row whose blob was deleted.
// PGlite only: the task claim SQL is plain Postgres; what differs per driver here is the delete
// grace (65 s with Postgres, for other instances' row caches), which would only slow this down.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ALICE, BOB, SECRET, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { startTestS3, until } from './helpers/s3.js';
import { loadConfig } from '../src/config/load.js';
import { startMediaRepo, type RunningRepo } from '../src/main.js';
import { createLogger } from '../src/logging/logger.js';
import { png } from './helpers/images.js';

const s3 = await startTestS3();
t.teardown(() => s3.close());
const r = await startTestRepo('pglite', {
  datastores: [
    { id: 'files', type: 'file', forKinds: ['all'], opts: { path: join(await tmpMediaDir(), 'media') } },
    // Read-only for new uploads (no kinds): only transfers put blobs here.
    { id: 's3', type: 's3', forKinds: [], opts: s3.opts() },
  ],
});
async function tmpMediaDir(): Promise<string> {
  return (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'media-repo-dsadmin-'));
}
const configFile = join(r.dir, 'media-repo.yaml');
// The repo may be restarted (interrupted transfer); requests go to whichever one runs now.
let repo: RunningRepo = r.repo;
t.teardown(async () => {
  await repo.stop(2000);
  await r.close();
});

const ADMIN = '/_matrix/media/unstable/admin';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function call(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('X-Forwarded-Host', SERVER_NAME);
  if (init.token) headers.set('Authorization', `Bearer ${init.token}`);
  return fetch(`http://127.0.0.1:${repo.port}${path}`, { ...init, headers });
}

async function uploadId(body: Buffer, token = ALICE): Promise<string> {
  const res = await call('/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array(body), token });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function download(id: string): Promise<Buffer> {
  const res = await call(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
  if (res.status !== 200) throw new Error(`download ${id}: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}

interface Task {
  task_id: number;
  is_finished: boolean;
  error_message: string;
  progress: { moved?: number };
}
const task = async (id: number): Promise<Task> =>
  (await (await call(`${ADMIN}/tasks/${id}`, { token: SECRET })).json()) as Task;

async function transfer(src: string, dst: string): Promise<number> {
  const res = await call(`${ADMIN}/datastores/${src}/transfer_to/${dst}?before_ts=${Date.now() + 1000}`, {
    method: 'POST',
    token: SECRET,
  });
  if (res.status !== 200) throw new Error(`transfer: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { task_id: number }).task_id;
}

/** Every row's blob read back from its datastore and hashed. */
async function verifyAllBlobs(t: Test, expectStore: string): Promise<void> {
  const rows = await repo.services.db.query<{ datastore_id: string; location: string; sha256_hash: string }>(
    'SELECT datastore_id, location, sha256_hash FROM media UNION SELECT datastore_id, location, sha256_hash FROM thumbnails',
  );
  t.ok(rows.rows.length > 0, 'there are blobs');
  for (const row of rows.rows) {
    t.equal(row.datastore_id, expectStore, `row of ${row.sha256_hash.slice(0, 8)} points at ${expectStore}`);
    const bytes = await repo.services.datastores.get(row.datastore_id)!.readAll(row.location);
    t.equal(sha(bytes), row.sha256_hash, `blob ${row.location} hashes to its row's sha256`);
  }
}

async function objectsIn(store: string): Promise<string[]> {
  const out: string[] = [];
  for await (const l of repo.services.datastores.get(store)!.listObjects!()) out.push(l);
  return out;
}

const media = new Map<string, Buffer>();

t.test('admin endpoints: auth and shapes', async (t) => {
  for (let i = 0; i < 6; i++) {
    const body = randomBytes(1000 + i * 50_000);
    media.set(await uploadId(body), body);
  }
  // One blob shared by two rows (dedup), and an image with a thumbnail row.
  const shared = randomBytes(3000);
  media.set(await uploadId(shared, ALICE), shared);
  media.set(await uploadId(shared, BOB), shared);
  const image = await png(200, 150);
  const imageId = await uploadId(image);
  media.set(imageId, image);
  const thumb = await call(
    `/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${imageId}?width=64&height=64&method=scale`,
    { token: ALICE },
  );
  t.equal(thumb.status, 200, 'thumbnail generated');
  await thumb.arrayBuffer();

  for (const prefix of [ADMIN, '/_matrix/media/unstable/io.t2bot.media/admin']) {
    t.equal((await call(`${prefix}/datastores`)).status, 401, 'no token: 401');
    const denied = await call(`${prefix}/datastores`, { token: ALICE });
    t.equal(denied.status, 403, 'non-admin: 403');
    t.equal(((await denied.json()) as { errcode: string }).errcode, 'M_FORBIDDEN');
    const list = await call(`${prefix}/datastores`, { token: SECRET });
    t.equal(list.status, 200);
    const body = (await list.json()) as Record<string, { type: string; uri: string }>;
    t.same(Object.keys(body).sort(), ['files', 's3']);
    t.equal(body.files!.type, 'file');
    t.equal(body.s3!.type, 's3');
    t.match(body.s3!.uri, /^s3:http:\/\/127\.0\.0\.1:\d+\/media-test$/);
  }
  t.equal((await call(`${ADMIN}/datastores/files/size_estimate`, { token: ALICE })).status, 403);
  t.equal((await call(`${ADMIN}/datastores/files/transfer_to/s3`, { method: 'POST', token: ALICE })).status, 403);
  t.equal((await call(`${ADMIN}/tasks/1`, { token: ALICE })).status, 403);
  t.equal((await call(`${ADMIN}/datastores/nope/size_estimate`, { token: SECRET })).status, 404);
  t.equal((await call(`${ADMIN}/datastores/files/transfer_to/files`, { method: 'POST', token: SECRET })).status, 400);

  const est = (await (
    await call(`${ADMIN}/datastores/files/size_estimate?before_ts=${Date.now() + 1000}`, { token: SECRET })
  ).json()) as Record<string, number>;
  const distinct = new Map([...media.values()].map((b) => [sha(b), b.length]));
  t.equal(est.media_affected, media.size, 'every media row');
  t.equal(est.media_hashes_affected, distinct.size, 'each hash once');
  t.equal(
    est.media_bytes,
    [...distinct.values()].reduce((a, b) => a + b, 0),
    "each blob's bytes once",
  );
  t.ok(est.thumbnails_affected! >= 1, 'the thumbnail row');
  t.ok(est.total_bytes! > est.media_bytes!, 'thumbnail bytes in the total');
  t.same(Object.keys(est).sort(), [
    'media_affected',
    'media_bytes',
    'media_hashes_affected',
    'thumbnail_bytes',
    'thumbnail_hashes_affected',
    'thumbnails_affected',
    'total_bytes',
    'total_hashes_affected',
  ]);
  const early = (await (
    await call(`${ADMIN}/datastores/files/size_estimate?before_ts=1`, { token: SECRET })
  ).json()) as Record<string, number>;
  t.equal(early.total_bytes, 0, 'nothing before ts=1');
  t.equal((await call(`${ADMIN}/datastores/files/size_estimate?before_ts=soon`, { token: SECRET })).status, 400);
});

async function transferWhileDownloading(t: Test, src: string, dst: string): Promise<void> {
  const id = await transfer(src, dst);
  const all = [...media];
  let rounds = 0;
  for (;;) {
    const state = await task(id);
    // Downloads keep working at every moment of the transfer (a different one each round).
    const [mid, body] = all[rounds % all.length]!;
    if (!(await download(mid)).equals(body)) t.fail(`download ${mid} during the transfer`);
    rounds++;
    if (state.is_finished) {
      t.equal(state.error_message, '', 'finished without error');
      break;
    }
  }
  t.ok(rounds >= 1, `${rounds} downloads during the transfer, all intact`);
  await verifyAllBlobs(t, dst);
  t.same(await objectsIn(src), [], `nothing left in ${src}`);
  for (const [mid, body] of media) t.ok((await download(mid)).equals(body), `download ${mid} after`);
}

t.test('transfer file → s3 and back: every blob moves, hashes hold, downloads never fail', async (t) => {
  await transferWhileDownloading(t, 'files', 's3');
  const keys = await s3.keys();
  for (const body of media.values()) t.ok(keys.includes(sha(body)), 'object under its hash in the bucket');
  await transferWhileDownloading(t, 's3', 'files');
  t.same(await s3.keys(), [], 'bucket empty again');
});

t.test('a transfer interrupted by a stop resumes at the next start', async (t) => {
  // Slow S3 so the stop lands mid-transfer.
  s3.fault = { kind: 'slow', ms: 150 };
  const id = await transfer('files', 's3');
  await until('a few blobs moved', async () => ((await task(id)).progress.moved ?? 0) >= 2);
  await repo.stop(2000);
  s3.fault = null;
  const log = createLogger({ level: 'debug', json: false, sink: (l) => r.logs.push(l) });
  repo = await startMediaRepo({ config: await loadConfig(configFile), log, port: 0 });
  const mid = await task(id);
  t.notOk(mid.is_finished && mid.progress.moved === undefined, 'the task was not lost');
  await until('the resumed transfer finishes', async () => (await task(id)).is_finished);
  t.equal((await task(id)).error_message, '');
  t.ok(
    r.logs.some((l) => l.includes('resuming background task')),
    'resumed, not restarted from nothing',
  );
  await verifyAllBlobs(t, 's3');
  t.same(await objectsIn('files'), [], 'nothing left behind in files');
  for (const [m, body] of media) t.ok((await download(m)).equals(body), `download ${m} after the resume`);
});

t.test('check-datastores: clean, then an orphan and a missing blob', async (t) => {
  const victim = (
    await repo.services.db.query<{ location: string; sha256_hash: string }>(
      "SELECT location, sha256_hash FROM media WHERE datastore_id = 's3' LIMIT 1",
    )
  ).rows[0]!;
  await repo.stop(2000);
  const cli = new URL('../src/cli.js', import.meta.url).pathname;
  // Asynchronous: s3rver runs in this process and must keep answering the CLI.
  const run = () =>
    new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, 'check-datastores', '-config', configFile], {
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stdout += d));
      child.on('close', (status) => resolve({ status, stdout }));
    });
  const clean = await run();
  t.equal(clean.status, 0, `clean store: exit 0\n${clean.stdout}`);
  t.match(clean.stdout, /0 orphaned object\(s\), 0 missing blob\(s\)/);

  const filesRoot = (repo.services.datastores.get('files') as unknown as { root: string }).root;
  const orphan = 'ee/ee/' + 'e'.repeat(64);
  mkdirSync(join(filesRoot, 'ee/ee'), { recursive: true });
  writeFileSync(join(filesRoot, orphan), 'nobody references me');
  writeFileSync(join(filesRoot, '.staging', 'm9-1-leftover'), 'staging is not an orphan');
  await repo.services.datastores.get('s3')!.delete(victim.location);
  const dirty = await run();
  t.equal(dirty.status, 1, 'findings: exit 1');
  t.match(dirty.stdout, `orphan: files:${orphan}`);
  t.match(dirty.stdout, `missing: s3:${victim.location} (sha256 ${victim.sha256_hash}`);
  t.notMatch(dirty.stdout, 'm9-1-leftover');
  t.match(dirty.stdout, /1 orphaned object\(s\), 1 missing blob\(s\)/);
  rmSync(join(filesRoot, orphan));
});
