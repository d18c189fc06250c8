// Issue 13 item 11: failures an operator must be able to see. A homeserver that is down (or
// answers 5xx) turns every authenticated request into a 502: that is logged, with the
// homeserver, its address, the cause and the request ID, once per homeserver per interval. A
// wrong database.postgres stops the start with one line naming the key and the reason.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { waitFor } from './helpers/hostile-store.js';
import { POSTGRES_URL } from './helpers/databases.js';
import { dsnTarget, openFailureReason } from '../src/db/open-error.js';
import { openDatabase } from '../src/db/open.js';
import { validateConfig } from '../src/config/validate.js';
import { createLogger } from '../src/logging/logger.js';

const failureLines = (repo: TestRepo) => repo.logs.filter((l) => l.includes('homeserver request failed'));

async function authenticatedCalls(t: Test, repo: TestRepo, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await repo.fetch('/_matrix/client/v1/media/config', { token: ALICE });
    t.equal(res.status, 502, `request ${i + 1} answers 502`);
    await res.arrayBuffer();
  }
}

t.test('an unreachable homeserver is logged once per interval with host, cause and request ID', async (t) => {
  const repo = await startTestRepo('pglite');
  t.teardown(() => repo.close());
  const upstream = new URL(repo.hs.url).host;
  await repo.hs.close();
  await authenticatedCalls(t, repo, 3);
  // Another HTTP thread's lines reach the logger a moment after its answer.
  await waitFor(() => failureLines(repo).length > 0);
  const lines = failureLines(repo);
  t.equal(lines.length, 1, 'three failures, one line (the interval is a minute)');
  t.match(lines[0], new RegExp(`homeserver="${SERVER_NAME}"`));
  t.match(lines[0], new RegExp(`upstream="${upstream.replace(/[.]/g, '\\.')}"`));
  t.match(lines[0], /cause="ECONNREFUSED/);
  t.match(lines[0], /requestId="REQ-[0-9a-z]+"/);
});

t.test('a homeserver answering 5xx is logged the same way', async (t) => {
  const repo = await startTestRepo('pglite');
  t.teardown(() => repo.close());
  repo.hs.failWith = 503;
  await authenticatedCalls(t, repo, 2);
  await waitFor(() => failureLines(repo).length > 0);
  const lines = failureLines(repo);
  t.equal(lines.length, 1);
  t.match(lines[0], /cause="GET _matrix\/client\/v3\/account\/whoami answered HTTP 503"/);
  t.match(lines[0], /requestId="REQ-/);
});

t.test('a wrong database.postgres names the key and the reason in one line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-dberr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    'database:\n  postgres: "postgres://media:s3cret-pw@127.0.0.1:1/media"\nhomeservers: [{ name: example.org, csApi: "http://127.0.0.1:1" }]\n',
  );
  const cli = new URL('../src/cli.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [cli, '-config', file], {
    cwd: dir,
    env: { ...process.env, REPO_CONFIG: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(r.status, 1);
  t.equal(r.stderr.trim(), 'media-repo: database.postgres: could not connect to 127.0.0.1:1 (ECONNREFUSED)');
  t.notMatch(r.stdout + r.stderr, /s3cret-pw/, 'the DSN (and its password) is never printed');
});

t.test('the reason is read from either driver', async (t) => {
  t.equal(dsnTarget('postgres://u:p@db.internal:6432/media?sslmode=disable'), 'db.internal:6432');
  t.equal(dsnTarget('postgresql://u@db.internal/media'), 'db.internal:5432');
  t.equal(dsnTarget('host=db.internal port=6543 dbname=media'), 'db.internal:6543');
  t.equal(
    openFailureReason(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
    'ECONNREFUSED',
  );
  t.equal(
    openFailureReason(
      new Error('connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running?'),
    ),
    'ECONNREFUSED',
  );
  t.equal(
    openFailureReason(Object.assign(new Error('database "x" does not exist'), { code: '3D000' })),
    'database "x" does not exist, SQLSTATE 3D000',
  );
  t.equal(
    openFailureReason(
      new Error('connection to server at "h", port 5432 failed: FATAL:  password authentication failed for user "u"\n'),
    ),
    'password authentication failed for user "u"',
  );
});

t.test(
  'a database that does not exist is named as such',
  { skip: POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set' },
  async (t) => {
    const url = new URL(POSTGRES_URL);
    url.pathname = '/media_repo_no_such_database';
    const log = createLogger({ level: 'error', json: false, sink: () => undefined });
    const dsn = url.toString();
    const cfg = validateConfig({
      database: { postgres: dsn },
      datastores: [{ type: 'file', id: 'f', opts: { path: '/tmp/unused' } }],
    });
    const error = await openDatabase(cfg, log).then(
      async (db) => {
        await db.close();
        return null;
      },
      (e: Error) => e,
    );
    t.equal(error?.name, 'ConfigError', 'printed without a stack');
    t.match(
      error?.message,
      /^database\.postgres: could not connect to [^ ]+ \(database "media_repo_no_such_database" does not exist/,
    );
  },
);
