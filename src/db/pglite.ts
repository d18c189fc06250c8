import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './driver.js';
import { DEFAULT_DATABASE_TIMEOUTS } from './deadline.js';
import { Errors } from '../errors.js';
import { lockDataDir } from './pglite-lock.js';

// Embedded Postgres (WASM) for zero-config installs. It is single-connection: PGlite
// serialises queries itself and its transaction() holds the instance until done.
// shared_buffers 16MB instead of PGlite's 128MB: measured RSS after opening an existing
// database fell from 328 MiB to 205-221 MiB; media metadata rows are small and the OS page
// cache still holds the data files.
const EMBEDDED_SETTINGS = ['shared_buffers=16MB', 'work_mem=1MB'];
function initInWorker(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./pglite-init-worker.js', import.meta.url), {
      workerData: { dir, settings: EMBEDDED_SETTINGS },
    });
    w.once('message', () => void w.terminate().then(() => resolve()));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && code !== 1 && reject(new Error(`PGlite initdb thread exited with ${code}`)));
  });
}

/**
 * PGlite runs in this process: no connection can stall, and a queued statement cannot be taken
 * back (it would still run after its caller gave up), so only the transaction bound applies. A
 * transaction past `transactionSeconds` fails at its next statement and rolls back: its holder
 * (an upload waiting on a slow datastore, say) stops keeping the whole database to itself.
 */
export async function openPglite(
  dataDir: string,
  transactionSeconds = DEFAULT_DATABASE_TIMEOUTS.transactionSeconds,
): Promise<Db> {
  const onDisk = dataDir !== 'memory://';
  if (onDisk) mkdirSync(dataDir, { recursive: true });
  const lock = onDisk ? lockDataDir(dataDir) : null;
  try {
    return await openLocked(dataDir, onDisk, transactionSeconds, () => lock?.release());
  } catch (e) {
    lock?.release();
    throw e;
  }
}

async function openLocked(
  dataDir: string,
  onDisk: boolean,
  transactionSeconds: number,
  unlock: () => void,
): Promise<Db> {
  const open = () => PGlite.create(onDisk ? dataDir : undefined, { postgresqlconf: EMBEDDED_SETTINGS });
  // initdb runs on a throwaway thread: in-process, the first start kept ~715 MiB of RSS
  // until a restart; this way a fresh server idles at ~345 MiB (measured by bench/).
  if (onDisk && !existsSync(join(dataDir, 'PG_VERSION'))) await initInWorker(dataDir);
  const pg = await open();
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      const r = await q.query<R>(sql, params as unknown[] | undefined);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    },
  });
  const base = wrap(pg);
  return {
    kind: 'pglite',
    query: base.query,
    tx: (fn) =>
      pg.transaction((tx) => {
        const inner = wrap(tx);
        const deadline = Date.now() + transactionSeconds * 1000;
        return fn({
          query: <R>(sql: string, params?: unknown[]) =>
            Date.now() > deadline
              ? Promise.reject(Errors.databaseTimeout('transaction', transactionSeconds))
              : inner.query<R>(sql, params),
        });
      }),
    exec: async (sql) => {
      await pg.exec(sql);
    },
    close: async () => {
      try {
        await pg.close();
      } finally {
        unlock();
      }
    },
  };
}
