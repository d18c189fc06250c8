import type { Queryable } from './driver.js';
import { num } from './driver.js';

// The invalidation log (migrations/0005_moderation.up.sql): what other instances' caches must
// forget, read by each instance after the last id it saw. Redis pub/sub is the fast path; this
// is the one that cannot lose a message.

export async function insertInvalidation(q: Queryable, payload: string): Promise<void> {
  await q.query('INSERT INTO media_invalidations (created_ts, payload) VALUES ($1, $2)', [Date.now(), payload]);
}

export async function invalidationsAfter(
  q: Queryable,
  afterId: number,
  limit: number,
): Promise<{ id: number; payload: string }[]> {
  const r = await q.query<Record<string, unknown>>(
    'SELECT id, payload FROM media_invalidations WHERE id > $1 ORDER BY id LIMIT $2',
    [afterId, limit],
  );
  return r.rows.map((x) => ({ id: num(x.id), payload: x.payload as string }));
}

export async function lastInvalidationId(q: Queryable): Promise<number> {
  const r = await q.query<{ id: unknown }>('SELECT COALESCE(MAX(id), 0) AS id FROM media_invalidations');
  return num(r.rows[0]!.id);
}

/** Rows every instance has long read (older than `beforeTs`). */
export async function sweepInvalidations(q: Queryable, beforeTs: number): Promise<number> {
  const r = await q.query('DELETE FROM media_invalidations WHERE created_ts < $1', [beforeTs]);
  return r.rowCount;
}
