import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './driver.js';

// Embedded Postgres (WASM) for zero-config installs. It is single-connection: PGlite
// serialises queries itself and its transaction() holds the instance until done.
export async function openPglite(dataDir: string): Promise<Db> {
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir === 'memory://' ? undefined : dataDir);
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
