import type { Db, Queryable } from './driver.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';

// Wraps a Db so every query, transaction and script is timed into media_db_query_seconds.
// Labels are the kind of call and its outcome only: SQL text would be unbounded cardinality.

async function timed<T>(m: MediaMetrics, op: string, fn: () => Promise<T>): Promise<T> {
  const end = m.dbQueryTime.startTimer({ op });
  try {
    const r = await fn();
    end({ outcome: 'ok' });
    return r;
  } catch (e) {
    end({ outcome: 'error' });
    throw e;
  }
}

export function timedDb(db: Db, m: MediaMetrics): Db {
  // Statements inside a transaction are timed as part of it; the tx histogram holds the total.
  return {
    kind: db.kind,
    query: (sql, params) => timed(m, 'query', () => db.query(sql, params)),
    tx: <T>(fn: (q: Queryable) => Promise<T>) => timed(m, 'tx', () => db.tx(fn)),
    exec: (sql) => timed(m, 'exec', () => db.exec(sql)),
    close: () => db.close(),
  } as Db;
}
