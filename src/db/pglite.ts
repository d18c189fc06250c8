import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './driver.js';

// Embedded Postgres (WASM) for zero-config installs. It is single-connection: PGlite
// serialises queries itself and its transaction() holds the instance until done.
// shared_buffers 16MB instead of PGlite's 128MB: measured RSS after opening an existing
// database fell from 328 MiB to 205-221 MiB; media metadata rows are small and the OS page
// cache still holds the data files.
const EMBEDDED_SETTINGS = ['shared_buffers=16MB', 'work_mem=1MB'];
export async function openPglite(dataDir: string): Promise<Db> {
  const onDisk = dataDir !== 'memory://';
  if (onDisk) mkdirSync(dataDir, { recursive: true });
  const open = () => PGlite.create(onDisk ? dataDir : undefined, { postgresqlconf: EMBEDDED_SETTINGS });
  const fresh = onDisk && !existsSync(join(dataDir, 'PG_VERSION'));
  let pg = await open();
  if (fresh) {
    // The first start runs initdb inside the WASM heap, which never shrinks: RSS stayed near
    // 700 MiB until restart. Closing and reopening once costs about a second and brings it
    // to the ~210 MiB of an ordinary start.
    await pg.close();
    pg = await open();
  }
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
    tx: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    exec: async (sql) => { await pg.exec(sql); },
    close: () => pg.close(),
  };
}
