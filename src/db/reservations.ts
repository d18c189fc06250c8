import type { Queryable } from './driver.js';
import { num } from './driver.js';

// MSC2246 reservations: IDs handed out by /create that have no content yet.

export interface Reservation {
  origin: string;
  mediaId: string;
  userId: string;
  createdTs: number;
  expiresTs: number;
}

function toReservation(r: Record<string, unknown>): Reservation {
  return {
    origin: r.origin as string,
    mediaId: r.media_id as string,
    userId: r.user_id as string,
    createdTs: num(r.created_ts),
    expiresTs: num(r.expires_ts),
  };
}

export async function getReservation(q: Queryable, origin: string, mediaId: string): Promise<Reservation | null> {
  const r = await q.query(
    'SELECT origin, media_id, user_id, created_ts, expires_ts FROM media_reservations WHERE origin = $1 AND media_id = $2',
    [origin, mediaId],
  );
  return r.rows[0] ? toReservation(r.rows[0]) : null;
}

/** Unexpired reservations of one user, oldest first (the first to expire frees a slot). */
export async function pendingForUser(
  q: Queryable,
  origin: string,
  userId: string,
  now: number,
): Promise<Reservation[]> {
  const r = await q.query(
    `SELECT origin, media_id, user_id, created_ts, expires_ts FROM media_reservations
     WHERE origin = $1 AND user_id = $2 AND expires_ts > $3 ORDER BY expires_ts`,
    [origin, userId, now],
  );
  return r.rows.map(toReservation);
}

/** Inserts unless the ID is already used by media or another reservation. */
export async function insertReservation(q: Queryable, res: Reservation): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO media_reservations (origin, media_id, user_id, created_ts, expires_ts)
     SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM media WHERE origin = $1 AND media_id = $2)
       AND NOT EXISTS (SELECT 1 FROM reserved_media WHERE origin = $1 AND media_id = $2)
     ON CONFLICT (origin, media_id) DO NOTHING`,
    [res.origin, res.mediaId, res.userId, res.createdTs, res.expiresTs],
  );
  return r.rowCount === 1;
}

export async function deleteReservation(q: Queryable, origin: string, mediaId: string): Promise<void> {
  await q.query('DELETE FROM media_reservations WHERE origin = $1 AND media_id = $2', [origin, mediaId]);
}

/** Expired reservations are swept so the table does not grow forever (MMR never swept them). */
export async function deleteExpiredReservations(q: Queryable, now: number): Promise<number> {
  const r = await q.query('DELETE FROM media_reservations WHERE expires_ts <= $1', [now]);
  return r.rowCount;
}
