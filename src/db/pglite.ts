import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Logger } from '../logging/logger.js';
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
/** The child's stdout carries one JSON line per applied migration, logged here as if applied here. */
function initInChild(dir: string, log: Logger | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(new URL('./pglite-initdb.js', import.meta.url));
    const child = spawn(process.execPath, [script, dir, JSON.stringify(EMBEDDED_SETTINGS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const { migration } = JSON.parse(line) as { migration?: unknown };
        if (typeof migration === 'string') log?.info('applied migration', { migration });
      } catch {
        // not one of ours
      }
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-2000)));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`PGlite initdb process failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`)),
    );
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
  log?: Logger,
): Promise<Db> {
  const onDisk = dataDir !== 'memory://';
  if (onDisk) mkdirSync(dataDir, { recursive: true });
  const lock = onDisk ? lockDataDir(dataDir) : null;
  try {
    return await openLocked(dataDir, onDisk, transactionSeconds, () => lock?.release(), log);
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
  log: Logger | undefined,
): Promise<Db> {
  // initdb and the migrations of a new database run in a throwaway process (see pglite-initdb.ts).
  if (onDisk && !existsSync(join(dataDir, 'PG_VERSION'))) await initInChild(dataDir, log);
  const pg = await PGlite.create(onDisk ? dataDir : undefined, { postgresqlconf: EMBEDDED_SETTINGS });
  return pgliteDb(pg, transactionSeconds, unlock);
}

/** A Db over one PGlite instance; `onClosed` runs after it closes (the data directory's lock). */
export function pgliteDb(pg: PGlite, transactionSeconds: number, onClosed: () => void): Db {
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
          serialised: true,
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
        onClosed();
      }
    },
  };
}
