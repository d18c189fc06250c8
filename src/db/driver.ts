// One small query interface over both drivers (embedded PGlite and real Postgres), so
// every table module and migration runs unchanged on either.

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  /**
   * True inside a transaction of a database that runs its transactions one at a time, in one
   * process (PGlite): such a transaction excludes every other, so advisory locks are implied.
   */
  readonly serialised?: boolean;
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres' | 'postgres-native';
  /** Runs fn inside BEGIN/COMMIT on one connection; ROLLBACK if it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Runs a multi-statement script (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** BIGINT columns come back as strings (pg) or bigint (PGlite): normalise to number. */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}
