import t from 'tap';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { loadConfig } from '../src/config/load.js';
import { startMediaRepo } from '../src/main.js';
import { createLogger } from '../src/logging/logger.js';
import { openPglite } from '../src/db/pglite.js';
import { MIGRATIONS_DIR, migrate, splitStatements } from '../src/db/migrate.js';
import type { Queryable } from '../src/db/driver.js';
import { createTestDatabase, drivers } from './helpers/databases.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { seedPglite } from './helpers/pglite-template.js';
import { assertNothingStored, blobFiles, snapshot } from './helpers/hostile-store.js';
import { ALICE, BOB, SECRET, SERVER_NAME, startTestRepo, testConfig, type TestRepo } from './helpers/repo.js';

// Upload quotas (uploads.quotas, issue 16) and MSC4034 limits and usage. Every upload body is
// random, so no two are the "same upload" that findExactUpload would answer without a row.

const quotas = (users: unknown[], more: Record<string, unknown> = {}) => ({
  uploads: { minBytes: 1, quotas: { enabled: true, users, ...more } },
});

function upload(r: TestRepo, token: string, size: number): Promise<Response> {
  return r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token,
    headers: { 'Content-Type': 'application/octet-stream' },
    body: randomBytes(size),
  });
}

/** A chunked upload (no Content-Length): only the commit check can refuse it. */
function uploadChunked(r: TestRepo, token: string, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${r.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'X-Forwarded-Host': SERVER_NAME, 'Transfer-Encoding': 'chunked' },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(randomBytes(size));
  });
}

async function usageRow(db: Queryable, userId: string, origin = SERVER_NAME) {
  const r = await db.query<{ bytes: unknown; files: unknown }>(
    'SELECT bytes, files FROM user_usage WHERE origin = $1 AND user_id = $2',
    [origin, userId],
  );
  return r.rows[0] ? { bytes: Number(r.rows[0].bytes), files: Number(r.rows[0].files) } : null;
}

async function storedBytes(db: Queryable, userId: string): Promise<{ bytes: number; files: number }> {
  const r = await db.query<{ b: unknown; n: unknown }>(
    'SELECT COALESCE(SUM(size_bytes), 0) AS b, COUNT(*) AS n FROM media WHERE user_id = $1',
    [userId],
  );
  return { bytes: Number(r.rows[0]!.b), files: Number(r.rows[0]!.n) };
}

/** A fresh user with its own token on the fixture homeserver. */
function user(r: TestRepo, name: string): string {
  r.hs.tokens.set(`${name}-token`, { userId: `@${name}:${SERVER_NAME}` });
  return `${name}-token`;
}

t.test('byte quota: limit - 1 and limit pass, limit + 1 is refused before and at commit', async (t) => {
  const r = await startTestRepo('pglite', quotas([{ glob: `@*:${SERVER_NAME}`, maxBytes: 1000 }]));
  t.teardown(() => r.close());
  const db = r.repo.services.db;
  t.equal((await upload(r, user(r, 'below'), 999)).status, 200, 'limit - 1');
  t.equal((await upload(r, user(r, 'exact'), 1000)).status, 200, 'exactly the limit');

  const before = await snapshot(db, r.mediaDir);
  const over = await upload(r, user(r, 'over'), 1001);
  t.equal(over.status, 403, 'limit + 1');
  const body = (await over.json()) as Record<string, unknown>;
  t.equal(body.errcode, 'M_USER_LIMIT_EXCEEDED');
  t.type(body.error, 'string');
  t.equal(body.info_uri, `https://${SERVER_NAME}/`, 'info_uri defaults to the server name');
  t.notOk('can_upgrade' in body, 'can_upgrade only when configured');
  await assertNothingStored(t, db, r.mediaDir, before, 'declared over the quota');

  // A user at the limit, with a body whose length is not declared: refused at commit.
  const chunked = await uploadChunked(r, 'exact-token', 1);
  t.equal(chunked.status, 403, 'chunked body past the limit');
  t.equal(JSON.parse(chunked.body).errcode, 'M_USER_LIMIT_EXCEEDED');
  await assertNothingStored(t, db, r.mediaDir, before, 'chunked over the quota');

  t.equal((await upload(r, 'below-token', 1)).status, 200, 'the last byte fits');
  t.equal((await upload(r, 'below-token', 1)).status, 403, 'and then nothing more');
  t.same(await usageRow(db, `@below:${SERVER_NAME}`), { bytes: 1000, files: 2 });
  t.same(await usageRow(db, `@over:${SERVER_NAME}`), null, 'a refused user has no usage');
});

t.test('file quota, the error fields, /config and /usage, and a purge gives quota back', async (t) => {
  const r = await startTestRepo(
    'pglite',
    quotas([{ glob: '@alice:*', maxFiles: 2, maxBytes: 0 }], {
      infoUri: 'https://example.org/quota',
      canUpgrade: true,
    }),
  );
  t.teardown(() => r.close());
  const db = r.repo.services.db;
  const first = (await (await upload(r, ALICE, 10)).json()) as { content_uri: string };
  t.equal((await upload(r, ALICE, 20)).status, 200);
  const refused = await upload(r, ALICE, 5);
  t.equal(refused.status, 403, 'third file');
  const body = (await refused.json()) as Record<string, unknown>;
  t.same(
    { errcode: body.errcode, info_uri: body.info_uri, can_upgrade: body.can_upgrade },
    { errcode: 'M_USER_LIMIT_EXCEEDED', info_uri: 'https://example.org/quota', can_upgrade: true },
  );
  t.equal((await upload(r, BOB, 5)).status, 200, 'no rule matches bob: no quota');

  const config = await (await r.fetch('/_matrix/client/v1/media/config', { token: ALICE })).json();
  t.same(config, { 'm.upload.size': 104857600, 'm.storage.max_files': 2 }, 'maxBytes 0 is no limit: left out');
  const unstableConfig = await (
    await r.fetch('/_matrix/media/unstable/org.matrix.msc4034/config', { token: ALICE })
  ).json();
  t.same(unstableConfig, { 'm.upload.size': 104857600, 'org.matrix.msc4034.storage.max_files': 2 });
  t.same(await (await r.fetch('/_matrix/media/v3/config', { token: BOB })).json(), { 'm.upload.size': 104857600 });
  t.same(await (await r.fetch('/_matrix/client/v1/media/usage', { token: ALICE })).json(), {
    'm.storage.used': 30,
    'm.storage.files': 2,
  });
  t.same(await (await r.fetch('/_matrix/media/unstable/org.matrix.msc4034/usage', { token: BOB })).json(), {
    'org.matrix.msc4034.storage.used': 5,
    'org.matrix.msc4034.storage.files': 1,
  });
  t.equal((await r.fetch('/_matrix/client/v1/media/usage')).status, 401, 'usage needs a token');

  const mediaId = first.content_uri.split('/').pop()!;
  const purge = await r.fetch(`/_matrix/media/unstable/admin/purge/${SERVER_NAME}/${mediaId}`, {
    method: 'POST',
    token: SECRET,
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  t.equal(purge.status, 200, 'purged');
  t.same(await usageRow(db, '@alice:media.test'), { bytes: 20, files: 1 }, 'the purge gave the file back');
  t.equal((await upload(r, ALICE, 7)).status, 200, 'so the next upload fits');
  t.same(await usageRow(db, '@alice:media.test'), await storedBytes(db, '@alice:media.test'), 'counter = rows');
});

t.test('a rule maxPending replaces uploads.maxPending; async PUTs are counted', async (t) => {
  const r = await startTestRepo('pglite', quotas([{ glob: '@alice:*', maxPending: 1, maxBytes: 10 }]));
  t.teardown(() => r.close());
  const create = (token: string) => r.fetch('/_matrix/media/v1/create', { method: 'POST', token, body: '{}' });
  const a = await create(ALICE);
  t.equal(a.status, 200);
  const second = await create(ALICE);
  t.equal(second.status, 429, "alice's rule allows one pending upload");
  t.equal(((await second.json()) as { errcode: string }).errcode, 'M_LIMIT_EXCEEDED');
  for (let i = 0; i < 3; i++) t.equal((await create(BOB)).status, 200, `bob keeps uploads.maxPending (${i + 1})`);

  const mxc = ((await a.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
  const put = (size: number) =>
    r.fetch(`/_matrix/media/v3/upload/${mxc}`, {
      method: 'PUT',
      token: ALICE,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: randomBytes(size),
    });
  const tooBig = await put(11);
  t.equal(tooBig.status, 403, 'an async PUT over the byte quota');
  t.equal(((await tooBig.json()) as { errcode: string }).errcode, 'M_USER_LIMIT_EXCEEDED');
  t.equal((await put(10)).status, 200, 'at the quota');
  t.same(await usageRow(r.repo.services.db, '@alice:media.test'), { bytes: 10, files: 1 });
});

t.test('a per-domain file overrides the quota for its homeserver', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-quota-'));
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  hs.tokens.set('carol-token', { userId: '@carol:other.test' });
  await seedPglite(join(dir, 'db'));
  const main = testConfig(dir, hs.url, '', quotas([{ glob: '@*:*', maxBytes: 1000 }]));
  main.homeservers = [
    { name: SERVER_NAME, csApi: hs.url },
    { name: 'other.test', csApi: hs.url },
  ];
  writeFileSync(join(dir, 'a-main.yaml'), yaml.dump(main));
  writeFileSync(
    join(dir, 'b-other.yaml'),
    yaml.dump({ homeserver: 'other.test', uploads: { quotas: { users: [{ glob: '@*:*', maxBytes: 10 }] } } }),
  );
  const log = createLogger({ level: 'error', json: false, sink: () => undefined });
  const repo = await startMediaRepo({ config: await loadConfig(dir), configPath: dir, log, port: 0 });
  t.teardown(async () => {
    await repo.stop(2000);
    await hs.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const post = (host: string, token: string) =>
    fetch(`http://127.0.0.1:${repo.port}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { 'X-Forwarded-Host': host, Authorization: `Bearer ${token}` },
      body: randomBytes(100),
    });
  t.equal((await post(SERVER_NAME, ALICE)).status, 200, 'the global rule: 1000 bytes');
  t.equal((await post('other.test', 'carol-token')).status, 403, "other.test's rule: 10 bytes");
});

for (const { name, skip } of drivers()) {
  t.test(`${name}: 50 concurrent uploads of one user near the limit never end above it`, { skip }, async (t) => {
    const r = await startTestRepo(name, quotas([{ glob: '@*:*', maxBytes: 10_000 }]));
    t.teardown(() => r.close());
    const db = r.repo.services.db;
    const results = await Promise.all(Array.from({ length: 50 }, () => upload(r, ALICE, 300)));
    const statuses = results.map((x) => x.status);
    await Promise.all(results.map((x) => x.arrayBuffer()));
    t.equal(statuses.filter((s) => s === 200).length, 33, 'floor(10000 / 300) succeed');
    t.equal(statuses.filter((s) => s === 403).length, 17, 'the rest are refused');
    const stored = await storedBytes(db, '@alice:media.test');
    t.ok(stored.bytes <= 10_000, `stored ${stored.bytes} bytes, at most the limit`);
    t.same(await usageRow(db, '@alice:media.test'), stored, 'the counter equals the rows');
    t.equal(blobFiles(r.mediaDir).length, 33, 'one blob per stored upload, none for refused ones');
  });
}

t.test('postgres: the counter is in the database and survives a restart', { skip: drivers()[1]!.skip }, async (t) => {
  const shared = await createTestDatabase();
  t.teardown(() => shared.drop());
  const overrides = quotas([{ glob: '@*:*', maxBytes: 100 }]);
  const first = await startTestRepo('postgres', overrides, {}, { postgresDsn: shared.dsn });
  t.equal((await upload(first, ALICE, 60)).status, 200);
  await first.close();
  const second = await startTestRepo('postgres', overrides, {}, { postgresDsn: shared.dsn });
  t.teardown(() => second.close());
  t.same(await (await second.fetch('/_matrix/client/v1/media/usage', { token: ALICE })).json(), {
    'm.storage.used': 60,
    'm.storage.files': 1,
  });
  t.equal((await upload(second, ALICE, 41)).status, 403, '60 + 41 > 100 after the restart');
  t.equal((await upload(second, ALICE, 40)).status, 200, '60 + 40 = 100');
});

t.test('migration 0006 backfills usage from existing rows, skipping remote media (PGlite)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-quota-mig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const early = join(dir, 'migrations');
  mkdirSync(early);
  for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '0006')) {
    copyFileSync(join(MIGRATIONS_DIR, f), join(early, f));
  }
  // Up to 0006 only: later migrations are not this test's business.
  const upTo0006 = join(dir, 'migrations-0006');
  mkdirSync(upTo0006);
  for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '0007')) {
    copyFileSync(join(MIGRATIONS_DIR, f), join(upTo0006, f));
  }
  // In memory: a new database on disk is made migrated (src/db/pglite-initdb.ts), and so is the
  // test servers' template; this test needs one that has seen only the early migrations.
  const db = await openPglite('memory://');
  t.teardown(() => db.close());
  const log = createLogger({ level: 'error', json: false, sink: () => undefined });
  await migrate(db, log, early);
  const row = (id: string, user: string, origin: string, size: number) =>
    db.query(
      `INSERT INTO media (origin, media_id, user_id, sha256_hash, size_bytes, datastore_id, location, creation_ts)
       VALUES ($1, $2, $3, 'h', $4, 'files', 'x', 0)`,
      [origin, id, user, size],
    );
  await row('a', '@u:media.test', 'media.test', 5);
  await row('b', '@u:media.test', 'media.test', 7);
  await row('c', '', 'remote.test', 100);
  t.equal(await migrate(db, log, upTo0006), 1, 'only 0006 is new');
  t.same(await usageRow(db, '@u:media.test'), { bytes: 12, files: 2 }, 'backfilled');
  t.same(await usageRow(db, '', 'remote.test'), null, 'remote media is not counted');
  await row('d', '@u:media.test', 'media.test', 1);
  await db.query("DELETE FROM media WHERE media_id IN ('a', 'c')");
  t.same(await usageRow(db, '@u:media.test'), { bytes: 8, files: 2 }, 'the triggers keep it');
});

t.test('splitStatements keeps $$ bodies whole', async (t) => {
  t.same(splitStatements('CREATE TABLE a (x INT);\nCREATE FUNCTION f() AS $$\nBEGIN\n  x;\nEND;\n$$;\nSELECT 1;\n'), [
    'CREATE TABLE a (x INT)',
    'CREATE FUNCTION f() AS $$\nBEGIN\n  x;\nEND;\n$$',
    'SELECT 1',
  ]);
});
