import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for the per-uploader counters (user_usage, migration 0006). Triggers on media keep
// them; this module only reads them, and locks one for an upload's quota check.

export interface UserUsage {
  bytes: number;
  files: number;
}

const NONE: UserUsage = { bytes: 0, files: 0 };

/** The user's current usage, unlocked (the check before a body is read, and MSC4034 /usage). */
export async function getUserUsage(q: Queryable, origin: string, userId: string): Promise<UserUsage> {
  const r = await q.query<Record<string, unknown>>(
    'SELECT bytes, files FROM user_usage WHERE origin = $1 AND user_id = $2',
    [origin, userId],
  );
  const row = r.rows[0];
  return row ? { bytes: num(row.bytes), files: num(row.files) } : NONE;
}

/**
 * The user's usage with their counter row locked until the transaction ends, so concurrent
 * uploads of one user check and insert one at a time. One statement: the no-op DO UPDATE
 * creates the row when missing and locks the latest version either way (what INSERT … ON
 * CONFLICT DO NOTHING then SELECT … FOR UPDATE do in two round trips).
 */
export async function lockUserUsage(q: Queryable, origin: string, userId: string): Promise<UserUsage> {
  const r = await q.query<Record<string, unknown>>(
    `INSERT INTO user_usage (origin, user_id, bytes, files) VALUES ($1, $2, 0, 0)
     ON CONFLICT (origin, user_id) DO UPDATE SET bytes = user_usage.bytes
     RETURNING bytes, files`,
    [origin, userId],
  );
  const row = r.rows[0]!;
  return { bytes: num(row.bytes), files: num(row.files) };
}
