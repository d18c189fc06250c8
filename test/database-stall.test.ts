import t from 'tap';
import { randomBytes } from 'node:crypto';
import { MatrixError } from '../src/errors.js';
import { openPglite } from '../src/db/pglite.js';
import { openPostgres } from '../src/db/postgres.js';
import { createLogger } from '../src/logging/logger.js';
import { createTestDatabase, POSTGRES_URL } from './helpers/databases.js';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { stagingFiles, waitFor } from './helpers/hostile-store.js';

// A database that stops answering without refusing (a black-holed connection: the relay keeps
// the sockets open and forwards nothing) must give bounded 503s, release the upload's staging
// object, drop the stalled connections rather than pool them, and recover once it answers.

const NO_POSTGRES = POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set';
const quiet = createLogger({ level: 'error', json: false, sink: () => undefined });
/** Far above every bound configured below: a request still unanswered by then hangs. */
const HANG_MS = 60_000;

async function upload(repo: TestRepo, bytes: Buffer): Promise<Response> {
  return repo.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    headers: { 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
    signal: AbortSignal.timeout(HANG_MS),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('Postgres behind a relay that stops forwarding', { skip: NO_POSTGRES, timeout: 180_000 }, async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const direct = new URL(db.dsn);
  const proxy = await startTcpProxy(direct.hostname, Number(direct.port || 5432));
  t.teardown(() => proxy.kill());
  const relayed = new URL(db.dsn);
  relayed.host = `127.0.0.1:${proxy.port}`;
  const repo = await startTestRepo(
    'postgres',
    {
      database: {
        postgres: relayed.toString(),
        // Idle connections stay pooled for 30 s: a stalled one that went back to the pool would still be open below.
        pool: { maxConnections: 4, maxIdleConnections: 4 },
        timeouts: { connectSeconds: 2, querySeconds: 2, transactionSeconds: 5 },
      },
    },
    {},
    { postgresDsn: db.dsn },
  );
  t.teardown(() => repo.close());

  const before = await upload(repo, randomBytes(2000));
  t.equal(before.status, 200, 'uploads work through the relay');

  proxy.stall();
  const res = await upload(repo, randomBytes(3000));
  t.equal(res.status, 503, 'an upload gets 503 once the database stops answering');
  t.equal(((await res.json()) as { errcode: string }).errcode, 'M_UNKNOWN');
  t.ok(await waitFor(() => stagingFiles(repo.mediaDir).length === 0, 5000), 'its staging file was removed');

  const unknown = await repo.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/notStoredAnywhere`, {
    token: ALICE,
    signal: AbortSignal.timeout(HANG_MS),
  });
  t.equal(unknown.status, 503, 'a download that needs the database gets 503 too');

  t.ok(
    await waitFor(() => proxy.stalledOpen() === 0, 10_000),
    `every connection that stalled was closed, none kept in the pool (${proxy.stalledOpen()} still open)`,
  );
  t.match(repo.logs.join('\n'), /the database did not answer in time/, 'the timeout is logged for the operator');

  proxy.resume();
  // Sequential uploads reuse pooled connections: one kept from the stall would fail them.
  for (let i = 0; i < 6; i++) {
    const again = await upload(repo, randomBytes(1000 + i));
    t.equal(again.status, 200, `upload ${i + 1} after the database answers again`);
  }
  t.equal(stagingFiles(repo.mediaDir).length, 0, 'no staging file left behind');
});

t.test(
  'a Postgres transaction past transactionSeconds fails with 503 and rolls back',
  { skip: NO_POSTGRES, timeout: 60_000 },
  async (t) => {
    const tdb = await createTestDatabase();
    t.teardown(() => tdb.drop());
    const db = await openPostgres(
      {
        dsn: tdb.dsn,
        maxConnections: 1,
        maxIdleConnections: 1,
        timeouts: { connectSeconds: 5, querySeconds: 5, transactionSeconds: 1 },
      },
      quiet,
    );
    t.teardown(() => db.close());
    await db.query('CREATE TABLE marks (n INTEGER)');
    const err = await db
      .tx(async (q) => {
        await q.query('INSERT INTO marks VALUES (1)');
        await sleep(2500); // not waiting on the database: only the transaction bound can end this
        await q.query('INSERT INTO marks VALUES (2)');
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    t.ok(
      err instanceof MatrixError && err.status === 503 && err.errcode === 'M_UNKNOWN',
      `503 M_UNKNOWN (${String(err)})`,
    );
    // With one connection in the pool, this also proves the destroyed one was replaced.
    const rows = await db.query<{ n: number }>('SELECT n FROM marks');
    t.same(rows.rows, [], 'nothing of the transaction was committed');
  },
);

t.test(
  'a PGlite transaction past transactionSeconds fails at its next statement and rolls back',
  { timeout: 60_000 },
  async (t) => {
    const db = await openPglite('memory://', 1);
    t.teardown(() => db.close());
    await db.exec('CREATE TABLE marks (n INTEGER)');
    const err = await db
      .tx(async (q) => {
        await q.query('INSERT INTO marks VALUES (1)');
        await sleep(1500);
        await q.query('INSERT INTO marks VALUES (2)');
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    t.ok(err instanceof MatrixError && err.status === 503, `503 (${String(err)})`);
    t.same((await db.query('SELECT n FROM marks')).rows, [], 'rolled back');
  },
);
