import type { Queryable } from './driver.js';
import { num } from './driver.js';
import { MEDIA_COLUMNS, NOT_RESERVED, mediaParams, type MediaRow } from './media.js';

// Named SQL for the per-uploader counters (user_usage, migration 0006). Triggers on media keep
// them; this module reads them, and locks one for an upload's quota check.

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

/** The quota insert was refused: the uploader's counters before this row. */
export class OverQuota extends Error {
  constructor(readonly usage: UserUsage) {
    super('upload quota exceeded');
  }
}

/**
 * Inserts an upload's media row held to the uploader's limits (<= 0: none). The statement
 * names the limits in the transaction setting media_repo.upload_quota, and the insert trigger
 * (migration 0006) refuses it when the counters it raises pass them: the check costs nothing
 * beyond the counting every insert does, and is exact because that counter update locks the
 * user's row until commit. Returns false when the media ID is taken (a reservation, a purge,
 * another row); throws OverQuota when over a limit (the transaction is then aborted).
 */
export async function insertMediaWithinQuota(
  q: Queryable,
  m: MediaRow,
  limits: { maxBytes: number; maxFiles: number },
  opts: { allowReserved: boolean },
): Promise<boolean> {
  try {
    const r = await q.query(
      `INSERT INTO media (${MEDIA_COLUMNS})
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
       FROM (SELECT set_config('media_repo.upload_quota', $13, true)) AS quota
       ${opts.allowReserved ? '' : `WHERE ${NOT_RESERVED}`}
       ON CONFLICT (origin, media_id) DO NOTHING`,
      [...mediaParams(m), `${Math.trunc(limits.maxBytes)}:${Math.trunc(limits.maxFiles)}`],
    );
    return r.rowCount === 1;
  } catch (e) {
    const err = e as { code?: string; detail?: string };
    if (err.code !== 'MRQ01') throw e;
    const [bytes, files] = String(err.detail ?? '0:0').split(':');
    throw new OverQuota({ bytes: Number(bytes) || 0, files: Number(files) || 0 });
  }
}
