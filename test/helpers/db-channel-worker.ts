import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { dbOverChannel } from '../../src/threads/db-channel.js';
import { MatrixError } from '../../src/errors.js';

// A thread that uses the embedded database through src/threads/db-channel.ts, driven by the
// test (test/db-channel.test.ts): each message names an action, the answer is its result.

const db = dbOverChannel((workerData as { port: MessagePort }).port, 'pglite');
const port = parentPort!;
let release: (() => void) | null = null;

type Action =
  | { id: number; action: 'query'; sql: string; params?: unknown[] }
  | { id: number; action: 'tx'; value: string; fail?: boolean }
  | { id: number; action: 'hold'; value: string }
  | { id: number; action: 'release' }
  | { id: number; action: 'slow'; ms: number };

function errorOf(e: unknown) {
  const err = e as { message: string; code?: string };
  return {
    message: err.message,
    code: err.code,
    matrix: e instanceof MatrixError ? { errcode: e.errcode, status: e.status } : null,
  };
}

async function run(m: Action): Promise<unknown> {
  switch (m.action) {
    case 'query':
      return (await db.query(m.sql, m.params)).rows;
    case 'tx':
      try {
        return await db.tx(async (q) => {
          await q.query('INSERT INTO t (v) VALUES ($1)', [m.value]);
          if (m.fail) throw new Error('thrown inside the transaction');
          return { serialised: q.serialised === true };
        });
      } catch (e) {
        return { error: errorOf(e) };
      }
    case 'hold':
      // Answers once the row is inserted, then keeps the transaction open until 'release'.
      void db.tx(async (q) => {
        await q.query('INSERT INTO t (v) VALUES ($1)', [m.value]);
        port.postMessage({ id: m.id, result: 'holding' });
        await new Promise<void>((r) => (release = r));
      });
      return undefined;
    case 'release':
      release?.();
      return 'released';
    case 'slow':
      try {
        return await db.tx(async (q) => {
          await new Promise((r) => setTimeout(r, m.ms));
          return (await q.query('SELECT 1 AS one')).rows;
        });
      } catch (e) {
        return { error: errorOf(e) };
      }
  }
}

port.on('message', (m: Action) => {
  void run(m).then(
    (result) => m.action !== 'hold' && port.postMessage({ id: m.id, result }),
    (e: unknown) => port.postMessage({ id: m.id, result: { error: errorOf(e) } }),
  );
});
