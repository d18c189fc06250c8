import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { ArchiveReader } from '../src/archive/read-archive.js';
import { insertExport, insertExportPart } from '../src/db/exports.js';
import { EXPORT_DATA, type ExportDataParams } from '../src/tasks/export-data.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { waitTask } from './helpers/tasks.js';
import { ALICE, BOB, SECRET, startTestRepo, testConfig, type TestRepo } from './helpers/repo.js';
import { blobReferenced, unreferencedLocations } from '../src/db/blobs.js';

// The server side of GDPR archives (MMR's admin API) over real HTTP: exports started by the
// roles MMR allows, served to whoever holds the export ID (view page, metadata, parts readable
// by our reader and by system tar), deleted with their stored objects, and imported into a
// second repo through the three import endpoints with parts posted in reverse order.
// PGlite only: the SQL is plain and the task runner's claims are covered elsewhere.

const ADMIN = '/_matrix/media/unstable/admin';
const MOD = 'mod-token';
const HS = 'media.test';
const OTHER = 'other.test';

const hs = await startFixtureHomeserver();
hs.tokens.set(ALICE, { userId: '@alice:media.test' });
hs.tokens.set(BOB, { userId: '@bob:media.test' });
hs.tokens.set(MOD, { userId: '@mod:media.test' });
hs.admins.add('@mod:media.test');
t.teardown(() => hs.close());

function overridesFor(dir: string, archiving: Record<string, unknown>, archives = true): Record<string, unknown> {
  return {
    homeservers: [HS, OTHER].map((name) => ({ name, csApi: hs.url, adminApiKind: 'synapse' })),
    thumbnails: { pregenerate: false },
    archiving: { targetBytesPerPart: 4096, ...archiving },
    datastores: [
      {
        id: 'media',
        type: 'file',
        forKinds: ['local_media', 'remote_media', 'thumbnails'],
        opts: { path: join(dir, 'media') },
      },
      ...(archives
        ? [{ id: 'archives', type: 'file', forKinds: ['archives'], opts: { path: join(dir, 'archives') } }]
        : []),
    ],
  };
}

const shared = await mkdtemp(join(tmpdir(), 'archive-api-'));
t.teardown(() => rm(shared, { recursive: true, force: true }));
const a: TestRepo = await startTestRepo('pglite', overridesFor(shared, {}));
t.teardown(() => a.close());

/** Rewrites A's config file (same stores) and reloads it. */
async function reconfigure(archiving: Record<string, unknown>, archives = true): Promise<void> {
  const doc = testConfig(a.dir, a.hs.url, '', overridesFor(shared, archiving, archives));
  writeFileSync(join(a.dir, 'media-repo.yaml'), yaml.dump(doc));
  await a.repo.reload();
}

async function upload(r: TestRepo, body: Buffer, token: string, name: string): Promise<string> {
  const res = await r.fetch(`/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': 'application/octet-stream' },
    token,
  });
  if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { content_uri: string }).content_uri;
}

async function post(r: TestRepo, path: string, token: string | null, body?: Buffer): Promise<Response> {
  return r.fetch(ADMIN + path, { method: 'POST', token, ...(body ? { body: new Uint8Array(body) } : {}) });
}

/** Content-addressed files under a file datastore (its staging directory left out). */
async function storedObjects(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else if (/^[0-9a-f]{64}$/.test(e.name)) out.push(rel + e.name);
    }
  };
  await walk(dir, '');
  return out;
}

const files = [randomBytes(5000), randomBytes(3000), Buffer.from('small and compressible '.repeat(40))];
const aliceMxcs: string[] = [];
for (const [i, f] of files.entries()) aliceMxcs.push(await upload(a, f, ALICE, `file ${i}.bin`));
const bobMxc = await upload(a, randomBytes(700), BOB, 'bob.bin');

interface Metadata {
  entity: string;
  parts: { index: number; size: number; name: string }[];
  finished: boolean;
  error: string | null;
}

let mainExport = '';
let mainParts: Metadata['parts'] = [];
const partBytes = new Map<number, Buffer>();

t.test('without selfService only repo admins start exports', async (t) => {
  let res = await post(a, '/user/@alice:media.test/export', ALICE);
  t.equal(res.status, 403, 'a user may not export themselves');
  t.equal(((await res.json()) as { errcode: string }).errcode, 'M_FORBIDDEN');
  res = await post(a, `/server/${HS}/export`, MOD);
  t.equal(res.status, 403, 'a local admin may not export their server');
  res = await post(a, '/user/@alice:media.test/export', null);
  t.equal(res.status, 401);
});

t.test('a repo admin exports a user: ID shape, metadata, parts', async (t) => {
  const res = await post(a, '/user/@alice:media.test/export', SECRET);
  t.equal(res.status, 200);
  const out = (await res.json()) as { export_id: string; task_id: number };
  t.match(out.export_id, /^[A-Za-z0-9_-]{32}$/, 'base64url of 24 random bytes');
  t.ok(Buffer.from(out.export_id, 'base64url').length >= 16, 'at least 128 bits');
  t.type(out.task_id, 'number');
  mainExport = out.export_id;
  const task = await waitTask(a, out.task_id);
  t.equal(task.error_message, '');
  t.equal(task.progress.media, 3, 'alice has three uploads; bob is not in her export');

  const m = (await (await a.fetch(`${ADMIN}/export/${mainExport}/metadata`)).json()) as Metadata;
  t.equal(m.entity, '@alice:media.test');
  t.equal(m.finished, true);
  t.equal(m.error, null);
  t.ok(m.parts.length >= 3, `split at 4096 bytes: ${m.parts.length} parts`);
  t.same(
    m.parts.map((p) => p.index),
    m.parts.map((_, i) => i + 1),
  );
  t.equal(m.parts.at(-1)!.name, 'export-manifest.tgz', "MMR's last part holds the manifest");
  t.equal(m.parts[0]!.name, 'export-part-1.tgz');
  for (const p of m.parts) t.ok(p.size > 0);
  mainParts = m.parts;

  const other = (await (await post(a, '/user/@alice:media.test/export', SECRET)).json()) as {
    export_id: string;
    task_id: number;
  };
  t.not(other.export_id, mainExport, 'every export gets a fresh ID');
  await waitTask(a, other.task_id);
  // Its media parts are byte-identical to the first export's (one stored object each): deleting
  // it must leave them, which the downloads of the next test check.
  const del = await a.fetch(`${ADMIN}/export/${other.export_id}`, { method: 'DELETE' });
  t.equal(del.status, 200);
});

t.test('parts download as attachments, readable by our reader and by tar', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'archive-api-parts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const p of mainParts) {
    const res = await a.fetch(`${ADMIN}/export/${mainExport}/part/${p.index}`);
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'application/gzip');
    t.equal(res.headers.get('content-disposition'), `attachment; filename="${p.name}"`);
    t.equal(res.headers.get('cache-control'), 'no-store');
    const body = Buffer.from(await res.arrayBuffer());
    t.equal(body.length, p.size, 'the size metadata names');
    partBytes.set(p.index, body);
    await writeFile(join(dir, p.name), body);
    const listing = execFileSync('tar', ['-tzf', join(dir, p.name)], { encoding: 'utf8' });
    t.ok(listing.trim().length > 0, `tar lists ${p.name}`);
  }
  const reader = await ArchiveReader.open(
    mainParts.map((p) => ({ name: p.name, open: () => createReadStream(join(dir, p.name)) })),
  );
  t.same(Object.keys(reader.manifest.media).sort(), [...aliceMxcs].sort());
  t.notOk(bobMxc in reader.manifest.media);
  t.equal(reader.manifest.entity_id, '@alice:media.test');
  const got = new Map<string, Buffer>();
  for await (const item of reader.items()) {
    const chunks: Buffer[] = [];
    for await (const c of item.open()) chunks.push(c as Buffer);
    got.set(item.mxc, Buffer.concat(chunks));
  }
  for (const [i, mxc] of aliceMxcs.entries()) t.ok(got.get(mxc)?.equals(files[i]!), `${mxc} byte for byte`);
});

t.test('stored parts count as referenced for the orphan collector, check-datastores and purges', async (t) => {
  const db = a.repo.services.db;
  const r = await db.query<{ datastore_id: string; location: string }>(
    'SELECT datastore_id, location FROM export_parts WHERE export_id = $1',
    [mainExport],
  );
  t.ok(r.rows.length >= 3, 'the export has stored parts');
  const byStore = new Map<string, string[]>();
  for (const p of r.rows) byStore.set(p.datastore_id, [...(byStore.get(p.datastore_id) ?? []), p.location]);
  for (const [ds, locations] of byStore) {
    t.same(await unreferencedLocations(db, ds, locations), [], `no part in ${ds} looks like an orphan`);
    for (const l of locations) t.ok(await blobReferenced(db, ds, l), `${l} is referenced`);
  }
  // A location nothing keeps is still unreferenced: the check is not always true.
  const [ds] = [...byStore.keys()];
  t.same(await unreferencedLocations(db, ds!, ['ab/cd/none']), ['ab/cd/none']);
});

t.test('the view page escapes what it shows and is not cached or referred', async (t) => {
  const hostile = '@<i>"x"&\':media.test';
  const res = await post(a, `/user/${encodeURIComponent(hostile)}/export`, SECRET);
  t.equal(res.status, 200);
  const out = (await res.json()) as { export_id: string; task_id: number };
  await waitTask(a, out.task_id);
  const view = await a.fetch(`${ADMIN}/export/${out.export_id}/view`);
  t.equal(view.status, 200);
  t.equal(view.headers.get('content-type'), 'text/html; charset=utf-8');
  t.equal(view.headers.get('referrer-policy'), 'no-referrer');
  t.equal(view.headers.get('cache-control'), 'no-store');
  // Sandboxed and script-free, but allowed to download: its links are the parts (attachments).
  const csp = view.headers.get('content-security-policy') ?? '';
  t.match(csp, /^sandbox allow-downloads; default-src 'none';/);
  t.notMatch(csp, /script-src 'self'|allow-scripts|allow-same-origin/);
  t.match(csp, /frame-ancestors 'none'/);
  t.equal(view.headers.get('access-control-allow-origin'), '*', 'the rest of the common headers are kept');
  t.equal(view.headers.get('x-content-type-options'), 'nosniff');
  const meta = await a.fetch(`${ADMIN}/export/${out.export_id}/metadata`);
  t.match(meta.headers.get('content-security-policy'), /^sandbox; /, 'every other answer keeps the plain sandbox');
  const html = await view.text();
  t.notMatch(html, /<i>/, 'no markup from the entity');
  t.match(html, '@&lt;i&gt;&quot;x&quot;&amp;&#39;:media.test');
  t.match(html, 'href="part/1"');

  const main = await (await a.fetch(`${ADMIN}/export/${mainExport}/view`)).text();
  for (const p of mainParts) t.match(main, `href="part/${p.index}"`);
  t.equal((await a.fetch(`${ADMIN}/export/${out.export_id}`, { method: 'DELETE' })).status, 200);
});

t.test('unknown export IDs and parts answer 404 M_NOT_FOUND', async (t) => {
  const unknown = randomBytes(24).toString('base64url');
  for (const [method, path] of [
    ['GET', `/export/${unknown}/metadata`],
    ['GET', `/export/${unknown}/view`],
    ['GET', `/export/${unknown}/part/1`],
    ['DELETE', `/export/${unknown}`],
    ['GET', `/export/${mainExport}/part/${mainParts.length + 1}`],
    ['GET', `/export/${mainExport}/part/0`],
    ['GET', '/export/short/metadata'],
  ] as const) {
    const res = await a.fetch(ADMIN + path, { method });
    t.equal(res.status, 404, `${method} ${path}`);
    t.equal(((await res.json()) as { errcode: string }).errcode, 'M_NOT_FOUND');
  }
});

t.test('import into a second repo through the three endpoints, parts in reverse order', async (t) => {
  const b = await startTestRepo('pglite');
  t.teardown(() => b.close());
  const order = [...mainParts].reverse();
  const refused = await post(b, '/import', ALICE, partBytes.get(order[0]!.index));
  t.equal(refused.status, 403, 'imports are for repo admins');
  const first = await post(b, '/import', SECRET, partBytes.get(order[0]!.index));
  t.equal(first.status, 200);
  const { import_id, task_id } = (await first.json()) as { import_id: string; task_id: number };
  t.match(import_id, /^[A-Za-z0-9_-]{32}$/);
  for (const p of order.slice(1)) {
    const res = await post(b, `/import/${import_id}/part`, SECRET, partBytes.get(p.index));
    t.equal(res.status, 200, `part ${p.index}`);
  }
  const waiting = (await (await b.fetch(`${ADMIN}/tasks/${task_id}`, { token: SECRET })).json()) as {
    is_finished: boolean;
  };
  t.equal(waiting.is_finished, false, 'the task waits for close');
  t.equal((await post(b, `/import/${import_id}/close`, SECRET)).status, 200);
  const task = await waitTask(b, task_id);
  t.equal(task.error_message, '');
  t.equal(task.progress.imported, 3);
  for (const [i, mxc] of aliceMxcs.entries()) {
    const res = await b.fetch(`/_matrix/media/v3/download/${mxc.slice('mxc://'.length)}`);
    t.equal(res.status, 200, `${mxc} is served by the second repo`);
    t.ok(Buffer.from(await res.arrayBuffer()).equals(files[i]!), 'same bytes');
  }
  const late = await post(b, `/import/${import_id}/part`, SECRET, partBytes.get(1));
  t.equal(late.status, 404, 'a closed import takes no more parts');
  t.same(await storedObjects(join(b.dir, 'media')).then((o) => o.length), 3, 'staged parts were removed');
});

t.test('self-service: users export themselves, local admins their own server', async (t) => {
  await reconfigure({ selfService: true });
  const own = await post(a, '/user/@alice:media.test/export', ALICE);
  t.equal(own.status, 200, 'alice exports herself');
  await waitTask(a, ((await own.json()) as { task_id: number }).task_id);
  t.equal((await post(a, '/user/@bob:media.test/export', ALICE)).status, 403, 'but not bob');
  const server = await post(a, `/server/${HS}/export`, MOD);
  t.equal(server.status, 200, 'a local admin exports their server');
  const { export_id, task_id } = (await server.json()) as { export_id: string; task_id: number };
  t.equal((await waitTask(a, task_id)).progress.media, 4, "every upload of the server, bob's too");
  t.equal((await post(a, `/server/${OTHER}/export`, MOD)).status, 403, 'not another server');
  t.equal((await post(a, `/server/${HS}/export`, BOB)).status, 403, 'a plain user may not export a server');
  const m = (await (await a.fetch(`${ADMIN}/export/${export_id}/metadata`)).json()) as Metadata;
  t.equal(m.entity, HS);
});

t.test('a restarted export drops what an earlier run committed and starts over', async (t) => {
  const { db, datastores, tasks } = a.repo.services;
  const ds = datastores.get('archives')!;
  const exportId = randomBytes(24).toString('base64url');
  await insertExport(db, { exportId, entity: '@alice:media.test', origin: HS, createdTs: Date.now() });
  // What a run killed after two parts leaves: committed objects with their rows, no finished_ts.
  const stale: string[] = [];
  for (const index of [1, 7]) {
    const staging = await ds.createStaging();
    staging.write(randomBytes(100));
    const { sha256, size } = await staging.finish();
    const location = await ds.commit(staging, sha256);
    stale.push(location);
    const part = { index, fileName: `export-part-${index}.tgz`, sizeBytes: size, sha256, datastoreId: ds.id, location };
    await insertExportPart(db, exportId, part);
  }
  let m = (await (await a.fetch(`${ADMIN}/export/${exportId}/metadata`)).json()) as Metadata;
  t.equal(m.finished, false, 'an unfinished export says so');
  t.same(
    m.parts.map((p) => p.index),
    [1, 7],
    'and lists the parts written so far',
  );
  const params: ExportDataParams = {
    export_id: exportId,
    entity: { user: '@alice:media.test', origin: HS },
    entity_id: '@alice:media.test',
    part_bytes: 4096,
    datastore_ids: ['media', 'archives'],
    s3_urls: true,
  };
  const task = await waitTask(a, await tasks.enqueue(EXPORT_DATA, { ...params }));
  t.equal(task.error_message, '');
  m = (await (await a.fetch(`${ADMIN}/export/${exportId}/metadata`)).json()) as Metadata;
  t.equal(m.finished, true);
  t.same(
    m.parts.map((p) => [p.index, p.name]),
    mainParts.map((p) => [p.index, p.name]),
    'the same parts as a first run',
  );
  for (const location of stale) t.notOk(await ds.exists(location), `stale object ${location} removed`);
});

t.test('delete removes the stored parts, and later requests answer 404', async (t) => {
  const before = await storedObjects(join(shared, 'archives'));
  t.ok(before.length >= mainParts.length, `the archives datastore holds the parts (${before.length})`);
  t.equal((await storedObjects(join(shared, 'media'))).length, 4, 'only media in the media datastore');
  // Every export still listed is deleted; then no part object may remain.
  const exports = (
    (await (await a.fetch(`${ADMIN}/tasks/all`, { token: SECRET })).json()) as {
      task_name: string;
      params: { export_id?: string };
    }[]
  )
    .filter((x) => x.task_name === 'export_data')
    .map((x) => x.params.export_id!);
  for (const id of exports) await a.fetch(`${ADMIN}/export/${id}`, { method: 'DELETE' });
  t.same(await storedObjects(join(shared, 'archives')), [], 'no part object is left');
  const res = await a.fetch(`${ADMIN}/export/${mainExport}/metadata`);
  t.equal(res.status, 404);
  t.equal((await a.fetch(`${ADMIN}/export/${mainExport}/part/1`)).status, 404);
  t.equal((await storedObjects(join(shared, 'media'))).length, 4, 'media blobs are untouched');
});

t.test('archiving.enabled false refuses exports and imports; no archives datastore answers 503', async (t) => {
  await reconfigure({ enabled: false });
  let res = await post(a, '/user/@alice:media.test/export', SECRET);
  t.equal(res.status, 403);
  const err = (await res.json()) as { errcode: string; error: string };
  t.equal(err.errcode, 'M_FORBIDDEN');
  t.match(err.error, /archiving\.enabled is false/);
  res = await post(a, '/import', SECRET, Buffer.from('x'));
  t.equal(res.status, 403);
  await reconfigure({ enabled: true }, false);
  res = await post(a, '/user/@alice:media.test/export', SECRET);
  t.equal(res.status, 503);
  const e2 = (await res.json()) as { errcode: string; error: string };
  t.equal(e2.errcode, 'M_UNKNOWN');
  t.match(e2.error, /No datastore accepts archives/);
});
