import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for the media table. Nothing outside src/db writes SQL.

export interface MediaRow {
  origin: string;
  mediaId: string;
  uploadName: string | null;
  contentType: string | null;
  userId: string;
  sha256: string;
  sizeBytes: number;
  datastoreId: string;
  location: string;
  creationTs: number;
  quarantined: boolean;
  requiresAuth: boolean;
}

export const MEDIA_COLUMNS =
  'origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes, datastore_id, location, creation_ts, quarantined, requires_auth';

export function toRow(r: Record<string, unknown>): MediaRow {
  return {
    origin: r.origin as string,
    mediaId: r.media_id as string,
    uploadName: (r.upload_name as string | null) ?? null,
    contentType: (r.content_type as string | null) ?? null,
    userId: r.user_id as string,
    sha256: r.sha256_hash as string,
    sizeBytes: num(r.size_bytes),
    datastoreId: r.datastore_id as string,
    location: r.location as string,
    creationTs: num(r.creation_ts),
    quarantined: Boolean(r.quarantined),
    requiresAuth: Boolean(r.requires_auth),
  };
}

export async function getMedia(q: Queryable, origin: string, mediaId: string): Promise<MediaRow | null> {
  const r = await q.query(`SELECT ${MEDIA_COLUMNS} FROM media WHERE origin = $1 AND media_id = $2`, [origin, mediaId]);
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/**
 * Which of these media IDs of one origin the media table has, in one query: importers check
 * a whole batch of source rows at once (a re-run opens no file for rows it imported before).
 */
export async function existingMediaIds(q: Queryable, origin: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const r = await q.query<{ media_id: string }>(
    'SELECT media_id FROM media WHERE origin = $1 AND media_id = ANY($2::text[])',
    [origin, ids],
  );
  return new Set(r.rows.map((x) => x.media_id));
}

/**
 * lockHash for many hashes at once (importers' batches), always in ascending hash order: two
 * batches sharing hashes then wait for each other instead of deadlocking. (Volatile functions
 * in the select list are evaluated after the ORDER BY sort.)
 */
export async function lockHashes(q: Queryable, hashes: readonly string[]): Promise<void> {
  if (hashes.length === 0 || q.serialised) return;
  await q.query(
    `SELECT pg_advisory_xact_lock(('x' || substr(h, 1, 16))::bit(64)::bigint)
     FROM unnest($1::text[]) WITH ORDINALITY AS u(h, n) ORDER BY n`,
    [[...new Set(hashes)].sort()],
  );
}

/** findBlobByHash for many hashes in one query: hash → its stored blobs. */
export async function findBlobsByHashes(
  q: Queryable,
  hashes: readonly string[],
): Promise<Map<string, { datastoreId: string; location: string; sizeBytes: number }[]>> {
  const out = new Map<string, { datastoreId: string; location: string; sizeBytes: number }[]>();
  if (hashes.length === 0) return out;
  const r = await q.query<Record<string, unknown>>(
    `SELECT DISTINCT sha256_hash, datastore_id, location, size_bytes FROM media
     WHERE sha256_hash = ANY($1::text[]) AND location <> ''`,
    [[...new Set(hashes)]],
  );
  for (const x of r.rows) {
    const h = x.sha256_hash as string;
    const list = out.get(h) ?? [];
    list.push({ datastoreId: x.datastore_id as string, location: x.location as string, sizeBytes: num(x.size_bytes) });
    out.set(h, list);
  }
  return out;
}

/** Any stored blob with this hash, preferring one in an allowed datastore. */
export async function findBlobByHash(
  q: Queryable,
  sha256: string,
): Promise<{ datastoreId: string; location: string; sizeBytes: number }[]> {
  const r = await q.query<Record<string, unknown>>(
    // Tombstones (quarantined rows whose blob was purged) have no blob: location ''.
    "SELECT DISTINCT datastore_id, location, size_bytes FROM media WHERE sha256_hash = $1 AND location <> ''",
    [sha256],
  );
  return r.rows.map((x) => ({
    datastoreId: x.datastore_id as string,
    location: x.location as string,
    sizeBytes: num(x.size_bytes),
  }));
}

/** MMR's "perfect match": the same user uploading the same bytes with the same name and type. */
export async function findExactUpload(
  q: Queryable,
  origin: string,
  userId: string,
  sha256: string,
  uploadName: string | null,
  contentType: string | null,
): Promise<MediaRow | null> {
  const r = await q.query(
    `SELECT ${MEDIA_COLUMNS} FROM media WHERE origin = $1 AND user_id = $2 AND sha256_hash = $3
       AND upload_name IS NOT DISTINCT FROM $4 AND content_type IS NOT DISTINCT FROM $5 AND NOT quarantined
     ORDER BY creation_ts LIMIT 1`,
    [origin, userId, sha256, uploadName, contentType],
  );
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/**
 * Inserts a row unless the ID is taken, either by media, by an async-upload reservation of
 * someone else, or by a purge (reserved_media: a purged ID never comes back). Returns false on a collision so the caller can pick another ID.
 */
export async function insertMedia(q: Queryable, m: MediaRow, opts: { allowReserved: boolean }): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO media (${MEDIA_COLUMNS})
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 ${opts.allowReserved ? '' : `WHERE ${NOT_RESERVED}`}
     ON CONFLICT (origin, media_id) DO NOTHING`,
    mediaParams(m),
  );
  return r.rowCount === 1;
}

/**
 * insertMedia for many rows in one statement; returns `origin\0mediaId` of the rows inserted (a
 * taken ID is skipped). Importers keep the IDs they had, reserved ones included; a group of new
 * uploads (allowReserved false) skips an ID held by a reservation or a purge too, as insertMedia
 * does, and draws again for the rows left out.
 */
export async function insertMediaMany(
  q: Queryable,
  rows: readonly MediaRow[],
  opts: { allowReserved: boolean } = { allowReserved: true },
): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const cols = rows.map((m) => mediaParams(m));
  const notReserved = `WHERE NOT EXISTS (SELECT 1 FROM media_reservations x WHERE x.origin = u.origin AND x.media_id = u.media_id)
       AND NOT EXISTS (SELECT 1 FROM reserved_media x WHERE x.origin = u.origin AND x.media_id = u.media_id)`;
  const r = await q.query<{ origin: string; media_id: string }>(
    `INSERT INTO media (${MEDIA_COLUMNS})
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                          $8::text[], $9::text[], $10::bigint[], $11::boolean[], $12::boolean[]) AS u(${MEDIA_COLUMNS})
     ${opts.allowReserved ? '' : notReserved}
     ON CONFLICT (origin, media_id) DO NOTHING RETURNING origin, media_id`,
    Array.from({ length: 12 }, (_, k) => cols.map((c) => c[k])),
  );
  return new Set(r.rows.map((x) => `${x.origin}\0${x.media_id}`));
}

/** The condition that (origin $1, media ID $2) is not held by a reservation or a purge. */
export const NOT_RESERVED = `NOT EXISTS (SELECT 1 FROM media_reservations WHERE origin = $1 AND media_id = $2)
         AND NOT EXISTS (SELECT 1 FROM reserved_media WHERE origin = $1 AND media_id = $2)`;

/** A row's values as $1..$12, in MEDIA_COLUMNS order. */
export function mediaParams(m: MediaRow): unknown[] {
  return [
    m.origin,
    m.mediaId,
    m.uploadName,
    m.contentType,
    m.userId,
    m.sha256,
    m.sizeBytes,
    m.datastoreId,
    m.location,
    m.creationTs,
    m.quarantined,
    m.requiresAuth,
  ];
}

/** Bytes stored per datastore, each blob counted once however many media or thumbnail rows share it. */
export async function bytesPerDatastore(q: Queryable): Promise<Map<string, number>> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT datastore_id, SUM(size_bytes) AS total FROM
       (SELECT datastore_id, location, size_bytes FROM media
        UNION SELECT datastore_id, location, size_bytes FROM thumbnails) blobs GROUP BY datastore_id`,
  );
  return new Map(r.rows.map((x) => [x.datastore_id as string, num(x.total)]));
}

export async function allMediaForCheck(q: Queryable): Promise<MediaRow[]> {
  const r = await q.query(`SELECT ${MEDIA_COLUMNS} FROM media`);
  return r.rows.map(toRow);
}

/**
 * Serialises work on one hash across connections and instances (dedup vs. a concurrent
 * identical upload, and later vs. purge). Held until the surrounding transaction ends. A
 * database whose transactions run one at a time (PGlite: one connection, one process by its
 * data-directory lock) holds every hash already: no statement is spent on it.
 */
export async function lockHash(q: Queryable, sha256: string): Promise<void> {
  if (q.serialised) return;
  await q.query(`SELECT pg_advisory_xact_lock(('x' || substr($1, 1, 16))::bit(64)::bigint)`, [sha256]);
}

/**
 * Holds a media row (FOR SHARE) for the rest of the transaction: a thumbnail being stored keeps
 * a purge of its media waiting, so the purge then sees (and deletes) the new thumbnail row.
 * False when the media is gone (purged) or is a tombstone.
 */
export async function holdMediaRow(q: Queryable, origin: string, mediaId: string): Promise<boolean> {
  const r = await q.query("SELECT 1 FROM media WHERE origin = $1 AND media_id = $2 AND location <> '' FOR SHARE", [
    origin,
    mediaId,
  ]);
  return r.rows.length > 0;
}
