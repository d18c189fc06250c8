import pg from 'pg';
import { isMainThread } from 'node:worker_threads';
import type { Db, Queryable, QueryResult } from './driver.js';
import type { Logger } from '../logging/logger.js';
import { DEFAULT_DATABASE_TIMEOUTS, timeoutReporter, within, type DatabaseTimeouts } from './deadline.js';
import { Errors } from '../errors.js';

export interface PostgresOptions {
  dsn: string;
  /** database.schema: every connection's search_path is this schema alone ('' = the default). */
  schema?: string;
  /** Every transaction read-only (default_transaction_read_only): reading another program's database. */
  readOnly?: boolean;
  maxConnections: number;
  maxIdleConnections: number;
  /** database.timeouts; the defaults when left out. */
  timeouts?: DatabaseTimeouts;
}

type Client = pg.PoolClient & { connection?: { stream?: { destroy(): void } } };

// Real Postgres through `pg`, using the libpq binding (pg-native) when it loads: it parses
// results in C, which matters for the row lookups on every download.
//
// Every wait is bounded (database.timeouts): a server that stops answering without refusing
// (a black-holed connection) would otherwise hold requests, staging objects and pooled
// connections for ever. A connection whose statement or transaction passed its bound is
// destroyed, never returned to the pool: its protocol state is unknown (a reply may still
// arrive for the abandoned statement) and its socket may be dead.
export async function openPostgres(opts: PostgresOptions, log: Logger): Promise<Db> {
  let native: typeof pg | null = null;
  // pg-native's libpq binding is not context-aware: used from a worker thread it aborts the
  // whole process (V8 "Cannot create a handle without a HandleScope"; checked with a worker
  // that connects and runs one query). Off the main thread the pure JavaScript driver is used.
  if (isMainThread) {
    try {
      native = (pg as unknown as { native: typeof pg | null }).native;
    } catch {
      native = null;
    }
  }
  if (!native)
    log.info(
      isMainThread
        ? 'pg-native is not available; using the pure JavaScript Postgres driver'
        : 'using the pure JavaScript Postgres driver on this worker thread (pg-native is main-thread only)',
    );
  const limits = opts.timeouts ?? DEFAULT_DATABASE_TIMEOUTS;
  const report = timeoutReporter((msg, fields) => log.warn(msg, fields));
  const Pool = (native ?? pg).Pool;
  const schema = opts.schema ?? '';
  const pool = new Pool({
    connectionString: opts.dsn,
    // The schema alone, not "schema, public": an unqualified name never reaches another
    // program's table of the same name in public (MMR's media).
    ...(schema || opts.readOnly ? { options: connectionOptions(schema, opts.readOnly ?? false) } : {}),
    max: opts.maxConnections,
    // Idle connections above maxIdleConnections are closed after this long.
    idleTimeoutMillis: opts.maxIdleConnections > 0 ? 30_000 : 1_000,
    // Bounds both the wait for a free pooled connection and the opening of a new one. pg passes
    // it on to libpq as connect_timeout too, which matters with pg-native: its connect blocks a
    // libuv thread (shared with file I/O and sharp) until libpq gives up.
    connectionTimeoutMillis: limits.connectSeconds * 1000,
  });
  if (schema) await createSchema(native ?? pg, opts.dsn, schema, limits.connectSeconds);
  pool.on('error', (err: Error) => log.warn('idle Postgres connection failed', { error: err.message }));

  const timedOut = (what: 'connect' | 'query' | 'transaction', seconds: number) => {
    report(what, seconds);
    return Errors.databaseTimeout(what, seconds);
  };

  // pg-pool listens for a connection's errors only while it is idle: one that fails while
  // checked out (the server restarted, pg_terminate_backend, DROP DATABASE … FORCE) emits
  // 'error' with no listener, which would end the process. Its statement fails on its own; the
  // event is only logged, and the pool drops the connection when it is released.
  const guarded = new WeakSet<Client>();
  const onCheckedOutError = (err: Error) => log.warn('Postgres connection failed', { error: err.message });

  async function acquire(): Promise<Client> {
    try {
      const c = (await pool.connect()) as Client;
      if (!guarded.has(c)) {
        guarded.add(c);
        c.on('error', onCheckedOutError);
      }
      return c;
    } catch (e) {
      // pg-pool's own bound (connectionTimeoutMillis) passed: no client was handed out.
      if (/timeout/i.test((e as Error).message)) throw timedOut('connect', limits.connectSeconds);
      throw e;
    }
  }

  /** One checked-out connection: released once, or destroyed when a bound passed on it. */
  function lease(client: Client) {
    let done = false;
    return {
      /** Released or destroyed: nothing may be sent on it any more. */
      get finished() {
        return done;
      },
      release() {
        if (done) return;
        done = true;
        client.release();
      },
      destroy() {
        if (done) return;
        done = true;
        // An error makes the pool drop the client and end it (libpq closes its socket at once).
        client.release(new Error('database wait passed its bound'));
        // The JavaScript driver ends politely when no statement is running, which a black hole
        // never acknowledges: cut the socket (pg-pool does the same on its connect timeout).
        client.connection?.stream?.destroy();
      },
    };
  }

  const run = async <R>(c: Client, sql: string, params?: unknown[]): Promise<QueryResult<R>> => {
    const r = await c.query(sql, params as unknown[]);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
  };

  /** A statement on `c`, bounded by querySeconds; past it `onTimeout` destroys the connection. */
  const bounded = <R>(c: Client, onTimeout: () => void, sql: string, params?: unknown[]) =>
    within(run<R>(c, sql, params), limits.querySeconds * 1000, () => {
      onTimeout();
      return timedOut('query', limits.querySeconds);
    });

  async function query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    const client = await acquire();
    const l = lease(client);
    try {
      return await bounded<R>(client, l.destroy, sql, params);
    } finally {
      l.release();
    }
  }

  // Fail fast with a clear message when the DSN is wrong.
  await query('SELECT 1');
  return {
    kind: native ? 'postgres-native' : 'postgres',
    query,
    async tx(fn) {
      const client = await acquire();
      const l = lease(client);
      // Past the transaction's bound (or a statement's) the connection is destroyed, which
      // rolls the transaction back on the server; statements `fn` still issues fail at once.
      let expired = false;
      const q: Queryable = {
        query: <R>(sql: string, params?: unknown[]) =>
          l.finished
            ? Promise.reject(
                expired
                  ? Errors.databaseTimeout('transaction', limits.transactionSeconds)
                  : Errors.databaseTimeout('query', limits.querySeconds),
              )
            : bounded<R>(client, l.destroy, sql, params),
      };
      const body = (async () => {
        await q.query('BEGIN');
        const out = await fn(q);
        await q.query('COMMIT');
        return out;
      })();
      try {
        return await within(body, limits.transactionSeconds * 1000, () => {
          expired = true;
          l.destroy();
          return timedOut('transaction', limits.transactionSeconds);
        });
      } catch (e) {
        // A destroyed connection rolls back on the server when it closes; a live one is told.
        if (!l.finished) await bounded(client, l.destroy, 'ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        l.release();
      }
    },
    exec: async (sql) => {
      // Migrations and scripts: the connect is bounded, the script is not (an index build on a
      // large table may rightly take longer than any statement bound).
      const client = await acquire();
      const l = lease(client);
      try {
        await client.query(sql);
      } finally {
        l.release();
      }
    },
    close: () => pool.end(),
  };
}

/** CREATE SCHEMA IF NOT EXISTS on a one-off connection (the pool's connections need it to exist). */
async function createSchema(driver: typeof pg, dsn: string, schema: string, connectSeconds: number): Promise<void> {
  const c = new driver.Client({ connectionString: dsn, connectionTimeoutMillis: connectSeconds * 1000 });
  await c.connect();
  try {
    // The name is checked as an identifier by the config (database.schema); quoted anyway.
    const found = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (found.rowCount === 0) await c.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } finally {
    await c.end();
  }
}

/** The server settings every connection starts with (libpq's options parameter). */
function connectionOptions(schema: string, readOnly: boolean): string {
  const o: string[] = [];
  if (schema) o.push(`-c search_path=${schema}`);
  if (readOnly) o.push('-c default_transaction_read_only=on');
  return o.join(' ');
}
