import pg from 'pg';
import type { Db, Queryable, QueryResult } from './driver.js';
import type { Logger } from '../logging/logger.js';

export interface PostgresOptions {
  dsn: string;
  maxConnections: number;
  maxIdleConnections: number;
}

// Real Postgres through `pg`, using the libpq binding (pg-native) when it loads: it parses
// results in C, which matters for the row lookups on every download.
export async function openPostgres(opts: PostgresOptions, log: Logger): Promise<Db> {
  let native: typeof pg | null = null;
  try {
    native = (pg as unknown as { native: typeof pg | null }).native;
  } catch {
    native = null;
  }
  if (!native) log.info('pg-native is not available; using the pure JavaScript Postgres driver');
  const Pool = (native ?? pg).Pool;
  const pool = new Pool({
    connectionString: opts.dsn,
    max: opts.maxConnections,
    // Idle connections above maxIdleConnections are closed after this long.
    idleTimeoutMillis: opts.maxIdleConnections > 0 ? 30_000 : 1_000,
  });
  pool.on('error', (err: Error) => log.warn('idle Postgres connection failed', { error: err.message }));
  const run = async <R>(c: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]): Promise<QueryResult<R>> => {
    const r = await c.query(sql, params as unknown[]);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
  };
  // Fail fast with a clear message when the DSN is wrong.
  await run(pool, 'SELECT 1');
  return {
    kind: native ? 'postgres-native' : 'postgres',
    query: (sql, params) => run(pool, sql, params),
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const q: Queryable = { query: (sql, params) => run(client, sql, params) };
        const out = await fn(q);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    exec: async (sql) => { await pool.query(sql); },
    close: () => pool.end(),
  };
}
