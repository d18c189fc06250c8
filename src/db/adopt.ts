import type { Queryable } from './driver.js';
import type { MmrAttribute, MmrMedia, MmrReservation, MmrReserved, MmrThumbnail } from './mmr-source.js';

// Named SQL that writes adopted MMR rows into media-repo's tables (`media-repo import mmr`).
// One statement per batch (unnest of column arrays), and ON CONFLICT DO NOTHING everywhere:
// a repeated or resumed import inserts only what is missing and changes nothing else.

const col = <T>(rows: T[], f: (r: T) => unknown) => rows.map(f);

/** Returns how many rows were new. The media insert trigger counts them in user_usage. */
export async function adoptMedia(q: Queryable, rows: MmrMedia[]): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await q.query(
    `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes,
                        datastore_id, location, creation_ts, quarantined, requires_auth, quarantined_by)
     SELECT o, i, n, t, u, h, s, d, l, c, qf, ra, CASE WHEN qf THEN 'import mmr' END
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                 $8::text[], $9::text[], $10::bigint[], $11::boolean[], $12::boolean[])
       AS x(o, i, n, t, u, h, s, d, l, c, qf, ra)
     ON CONFLICT (origin, media_id) DO NOTHING`,
    [
      col(rows, (m) => m.origin),
      col(rows, (m) => m.mediaId),
      col(rows, (m) => m.uploadName),
      col(rows, (m) => m.contentType),
      col(rows, (m) => m.userId),
      col(rows, (m) => m.sha256),
      col(rows, (m) => m.sizeBytes),
      col(rows, (m) => m.datastoreId),
      col(rows, (m) => m.location),
      col(rows, (m) => m.creationTs),
      col(rows, (m) => m.quarantined),
      col(rows, (m) => m.requiresAuth),
    ],
  );
  return r.rowCount;
}

/** MMR keeps no output size; its width and height are the size asked for, which is ours too. */
export async function adoptThumbnails(q: Queryable, rows: MmrThumbnail[]): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await q.query(
    `INSERT INTO thumbnails (origin, media_id, width, height, method, animated, content_type, out_width,
                             out_height, sha256_hash, size_bytes, datastore_id, location, creation_ts)
     SELECT o, i, w, h, m, a, t, w, h, sh, s, d, l, c
     FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::boolean[], $7::text[],
                 $8::text[], $9::bigint[], $10::text[], $11::text[], $12::bigint[])
       AS x(o, i, w, h, m, a, t, sh, s, d, l, c)
     ON CONFLICT DO NOTHING`,
    [
      col(rows, (x) => x.origin),
      col(rows, (x) => x.mediaId),
      col(rows, (x) => x.width),
      col(rows, (x) => x.height),
      col(rows, (x) => x.method),
      col(rows, (x) => x.animated),
      col(rows, (x) => x.contentType),
      col(rows, (x) => x.sha256),
      col(rows, (x) => x.sizeBytes),
      col(rows, (x) => x.datastoreId),
      col(rows, (x) => x.location),
      col(rows, (x) => x.creationTs),
    ],
  );
  return r.rowCount;
}

/** Only non-default purposes are rows in our table ('none' is the absence of one). */
export async function adoptAttributes(q: Queryable, rows: MmrAttribute[]): Promise<number> {
  const kept = rows.filter((a) => a.purpose !== 'none');
  if (kept.length === 0) return 0;
  const r = await q.query(
    `INSERT INTO media_attributes (origin, media_id, purpose)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
    [col(kept, (a) => a.origin), col(kept, (a) => a.mediaId), col(kept, (a) => a.purpose)],
  );
  return r.rowCount;
}

export async function adoptReserved(q: Queryable, rows: MmrReserved[], now: number): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await q.query(
    `INSERT INTO reserved_media (origin, media_id, reason, reserved_ts)
     SELECT o, i, n, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS x(o, i, n) ON CONFLICT DO NOTHING`,
    [col(rows, (x) => x.origin), col(rows, (x) => x.mediaId), col(rows, (x) => x.reason), now],
  );
  return r.rowCount;
}

/**
 * Pending async uploads (MMR's expiring_media), unless the upload completed (a media row).
 * MMR keeps no creation time: it is the expiry less the reservation lifetime.
 */
export async function adoptReservations(q: Queryable, rows: MmrReservation[], lifetimeMs: number): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await q.query(
    `INSERT INTO media_reservations (origin, media_id, user_id, created_ts, expires_ts)
     SELECT o, i, u, e - $5, e FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS x(o, i, u, e)
     WHERE NOT EXISTS (SELECT 1 FROM media m WHERE m.origin = x.o AND m.media_id = x.i)
     ON CONFLICT DO NOTHING`,
    [
      col(rows, (x) => x.origin),
      col(rows, (x) => x.mediaId),
      col(rows, (x) => x.userId),
      col(rows, (x) => x.expiresTs),
      lifetimeMs,
    ],
  );
  return r.rowCount;
}

/**
 * MMR refuses new uploads of any quarantined hash, whoever quarantined it: the adopted
 * quarantine blocks those hashes fleet-wide (scope '*') to keep that.
 */
export async function adoptQuarantinedHashes(q: Queryable, now: number): Promise<number> {
  const r = await q.query(
    `INSERT INTO quarantined_hashes (sha256_hash, scope, actor, created_ts)
     SELECT DISTINCT sha256_hash, '*', 'import mmr', $1::bigint FROM media WHERE quarantined AND quarantined_by = 'import mmr'
     ON CONFLICT DO NOTHING`,
    [now],
  );
  return r.rowCount;
}
