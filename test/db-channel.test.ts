import t, { type Test } from 'tap';
import { MessageChannel, Worker } from 'node:worker_threads';
import { openPglite } from '../src/db/pglite.js';
import type { Db } from '../src/db/driver.js';
import { serveDb } from '../src/threads/db-channel.js';

// The embedded database served to other threads over a message channel (src/threads/db-channel.ts):
// real PGlite on this thread, real worker threads on the other side.

const WORKER = new URL('./helpers/db-channel-worker.js', import.meta.url);

interface Thread {
  ask(m: Record<string, unknown>): Promise<unknown>;
  worker: Worker;
}

function thread(db: Db, t: Test): Thread {
  const { port1, port2 } = new MessageChannel();
  serveDb(db, port1);
  const worker = new Worker(WORKER, { workerData: { port: port2 }, transferList: [port2] });
  let next = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  worker.on('message', (m: { id: number; result: unknown }) => {
    waiting.get(m.id)?.(m.result);
    waiting.delete(m.id);
  });
  t.teardown(() => worker.terminate());
  return {
    worker,
    ask: (m) =>
      new Promise((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        worker.postMessage({ ...m, id });
      }),
  };
}

// One database for the tests that need no short transaction bound (a PGlite start is seconds);
// each test starts from an empty table.
let shared: Db | null = null;
t.teardown(() => shared?.close());

async function database(t: Test, transactionSeconds = 30): Promise<Db> {
  if (transactionSeconds === 30 && shared) {
    await shared.exec('TRUNCATE t');
    return shared;
  }
  const db = await openPglite('memory://', transactionSeconds);
  if (transactionSeconds === 30) shared = db;
  else t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (v TEXT PRIMARY KEY)');
  return db;
}

const values = async (db: Db) => (await db.query<{ v: string }>('SELECT v FROM t ORDER BY v')).rows.map((r) => r.v);

t.test('queries and transactions from another thread run on the owner’s database', async (t) => {
  const db = await database(t);
  const w = thread(db, t);
  t.same(await w.ask({ action: 'query', sql: 'SELECT $1::int + 1 AS n', params: [41] }), [{ n: 42 }]);
  t.same(
    await w.ask({ action: 'tx', value: 'a' }),
    { serialised: true },
    'committed; PGlite transactions are serialised',
  );
  t.same(await values(db), ['a'], 'the owner sees the committed row');
  const failed = (await w.ask({ action: 'tx', value: 'b', fail: true })) as { error: { message: string } };
  t.equal(failed.error.message, 'thrown inside the transaction', 'the thread gets its own error back');
  t.same(await values(db), ['a'], 'and its transaction was rolled back');
});

t.test('errors cross with what callers match on: pg codes and MatrixErrors', async (t) => {
  const db = await database(t, 1);
  const w = thread(db, t);
  await w.ask({ action: 'tx', value: 'dup' });
  const dup = (await w.ask({ action: 'tx', value: 'dup' })) as { error: { code: string } };
  t.equal(dup.error.code, '23505', 'a unique violation keeps its SQLSTATE');
  const slow = (await w.ask({ action: 'slow', ms: 1200 })) as {
    error: { code: string; matrix: { errcode: string; status: number } };
  };
  t.equal(slow.error.code, 'MR_ERR_DATABASE_TIMEOUT', 'a transaction past its bound fails as ours');
  t.ok(slow.error.matrix, 'as a MatrixError');
  t.same(await values(db), ['dup'], 'the database serves on');
});

t.test('transactions of two threads run one after the other', async (t) => {
  const db = await database(t);
  const a = thread(db, t);
  const b = thread(db, t);
  t.equal(await a.ask({ action: 'hold', value: 'first' }), 'holding');
  let bDone = false;
  const bTx = b.ask({ action: 'tx', value: 'second' }).then((r) => {
    bDone = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(bDone, "the second thread's transaction waits while the first holds the database");
  await a.ask({ action: 'release' });
  t.same(await bTx, { serialised: true }, 'then runs');
  t.same(await values(db), ['first', 'second']);
});

t.test('a thread that dies holding a transaction has it rolled back', async (t) => {
  const db = await database(t);
  const a = thread(db, t);
  t.equal(await a.ask({ action: 'hold', value: 'orphan' }), 'holding');
  await a.worker.terminate();
  // The owner may answer again only once the dead thread's transaction is gone.
  t.same(await values(db), [], 'its insert is gone');
  const b = thread(db, t);
  t.same(await b.ask({ action: 'tx', value: 'after' }), { serialised: true }, 'and other threads go on');
  t.same(await values(db), ['after']);
});
