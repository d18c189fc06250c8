import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ALICE, freePort, ONE_THREAD, SERVER_NAME, spawnRepo, startTestRepo, testConfig } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { RawConn, chunk } from './helpers/hostile-http.js';
import { stagingFiles, waitFor } from './helpers/hostile-store.js';
import { crashRepo, download } from './helpers/crash-repo.js';
import { POSTGRES_URL } from './helpers/databases.js';

// Process lifecycle through the real CLI: SIGHUP reloads the config, SIGTERM lets an upload in
// flight finish; and /readyz, which answers 503 while the database is gone or during shutdown.

t.test('SIGHUP reloads the config even where no file event arrives', async (t) => {
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-hup-'));
  const port = await freePort();
  // The server is pointed at a symlink; the edits go to its target in another directory, so the
  // watcher (on the symlink's directory) sees nothing and only the signal can trigger a reload.
  mkdirSync(join(dir, 'real'));
  mkdirSync(join(dir, 'etc'));
  const target = join(dir, 'real', 'media-repo.yaml');
  const link = join(dir, 'etc', 'media-repo.yaml');
  const cfg = testConfig(dir, hs.url, '', { repo: { bindAddress: '127.0.0.1', port, logLevel: 'info' } });
  writeFileSync(target, yaml.dump(cfg));
  symlinkSync(target, link);
  const { child, output } = await spawnRepo(link);
  t.teardown(async () => {
    child.kill('SIGKILL');
    await hs.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ask = (host: string) =>
    fetch(`http://127.0.0.1:${port}/_matrix/client/v1/media/config`, {
      headers: { 'X-Forwarded-Host': host, Authorization: `Bearer ${ALICE}` },
    });
  t.equal((await ask('second.test')).status, 502, 'second.test is not served yet');
  const homeservers = [...(cfg.homeservers as object[]), { name: 'second.test', csApi: hs.url }];
  writeFileSync(target, yaml.dump({ ...cfg, homeservers }));
  await new Promise((r) => setTimeout(r, 1000));
  t.equal((await ask('second.test')).status, 502, 'the edit alone was not seen');
  child.kill('SIGHUP');
  t.ok(
    await waitFor(async () => (await ask('second.test')).status === 200, 10_000),
    'after SIGHUP the new homeserver answers',
  );
  t.equal(child.exitCode, null, 'still running');
  t.match(output(), /SIGHUP: reloading the config/);
  t.match(output(), /config reloaded/);
});

t.test('SIGTERM with an upload in flight: the upload completes and is stored whole', async (t) => {
  const cr = await crashRepo('pglite');
  t.teardown(() => cr.close());
  await cr.start();
  const c = await RawConn.open(cr.port);
  await c.head('POST', '/_matrix/media/v3/upload', {
    Host: SERVER_NAME,
    Authorization: `Bearer ${ALICE}`,
    'Transfer-Encoding': 'chunked',
    'Content-Type': 'application/octet-stream',
  });
  const parts = Array.from({ length: 8 }, () => randomBytes(64 * 1024));
  for (const p of parts.slice(0, 4)) await c.write(chunk(p));
  t.ok(await waitFor(() => stagingFiles(cr.mediaDir).length > 0, 5000), 'the upload reached a staging file');
  const stopped = cr.stop(); // SIGTERM
  await new Promise((r) => setTimeout(r, 300));
  for (const p of parts.slice(4)) await c.write(chunk(p));
  await c.write('0\r\n\r\n');
  const res = await c.response(0, 15_000);
  t.equal(res?.status, 200, 'the in-flight upload is answered 200');
  const mxc = (JSON.parse(res!.body.toString('utf8')) as { content_uri: string }).content_uri;
  c.destroy();
  await stopped;
  t.same(stagingFiles(cr.mediaDir), [], 'no staging leftovers after the stop');
  await cr.start();
  const dl = await download(cr, mxc);
  t.equal(dl.status, 200, 'downloadable after the restart');
  t.ok(dl.body.equals(Buffer.concat(parts)), 'with every byte');
});

t.test('/readyz: 200 when the database answers, 503 once it is gone or during shutdown', async (t) => {
  // One thread: the main thread's shutdown flag and database are switched below by hand (a real
  // stop tells every thread: test/http-threads.test.ts).
  const repo = await startTestRepo('pglite', { repo: ONE_THREAD });
  t.teardown(() => repo.close());
  const ready = async () => {
    const res = await fetch(`${repo.url}/readyz`);
    return { status: res.status, body: (await res.json()) as { ready: boolean; checks?: Record<string, string> } };
  };
  const ok = await ready();
  t.equal(ok.status, 200);
  t.same(ok.body.checks, { database: 'ok', 'datastore:files': 'ok' });
  const svc = repo.repo.services;
  svc.state.shuttingDown = true;
  t.equal((await ready()).status, 503, 'shutting down');
  svc.state.shuttingDown = false;
  // The database going away: PGlite closed under the running server. Its close is then
  // made a no-op so the teardown's stop() does not close it twice.
  const close = svc.db.close.bind(svc.db);
  await close();
  svc.db.close = async () => undefined;
  const down = await ready();
  t.equal(down.status, 503, 'database down');
  t.not(down.body.checks?.database, 'ok', `the database check names the failure (${down.body.checks?.database})`);
  t.equal((await fetch(`${repo.url}/healthz`)).status, 200, 'liveness is unaffected');
});

t.test(
  '/readyz on Postgres: 503 once the database is dropped under the server',
  { skip: POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set' },
  async (t) => {
    const repo = await startTestRepo('postgres');
    t.teardown(() => repo.close());
    t.equal((await fetch(`${repo.url}/readyz`)).status, 200);
    const dsn = new URL(repo.repo.services.config().global.database.postgres);
    const admin = new URL(POSTGRES_URL);
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    // FORCE terminates the server's connections; its pool's reconnects then find no database.
    await c.query(`DROP DATABASE ${dsn.pathname.slice(1)} WITH (FORCE)`);
    await c.end();
    const res = await fetch(`${repo.url}/readyz`);
    t.equal(res.status, 503, 'not ready without its database');
    const body = (await res.json()) as { checks: Record<string, string> };
    t.not(body.checks.database, 'ok', `the check names the failure (${body.checks.database})`);
  },
);
