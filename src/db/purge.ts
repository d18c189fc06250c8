import type { Queryable } from './driver.js';
import { noReference } from './blobs.js';
import { num } from './driver.js';

// Named SQL for purges. Rows go first (one transaction per batch); a blob goes only after, under
// its hash lock, once no media or thumbnail row points at it any more (dedup shares blobs
// across users, homeservers and the two tables). Quarantined rows stay as tombstones
// (location '') so their mxc stays blocked.

export interface MediaKey {
  origin: string;
  mediaId: string;
}

export interface FreedBlob {
  datastoreId: string;
  location: string;
  sha256: string;
  sizeBytes: number;
}

function keyArrays(keys: MediaKey[]): [string[], string[]] {
  return [keys.map((k) => k.origin), keys.map((k) => k.mediaId)];
}

function blobs(rows: Record<string, unknown>[]): FreedBlob[] {
  return rows.map((x) => ({
    datastoreId: x.datastore_id as string,
    location: x.location as string,
    sha256: x.sha256_hash as string,
    sizeBytes: num(x.size_bytes),
  }));
}

/**
 * Removes these media rows (quarantined ones become tombstones) and all their thumbnails;
 * reserves the IDs of those whose origin is ours. Returns the keys purged and every blob that
 * lost a reference (the caller checks each for remaining ones).
 */
export async function purgeMediaRows(
  q: Queryable,
  keys: MediaKey[],
  localOrigins: string[],
  reason: string,
): Promise<{ purged: MediaKey[]; freed: FreedBlob[] }> {
  if (keys.length === 0) return { purged: [], freed: [] };
  const [origins, ids] = keyArrays(keys);
  const deleted = await q.query<Record<string, unknown>>(
    `DELETE FROM media m USING unnest($1::text[], $2::text[]) AS k(o, i)
     WHERE m.origin = k.o AND m.media_id = k.i AND NOT m.quarantined
     RETURNING m.origin, m.media_id, m.datastore_id, m.location, m.sha256_hash, m.size_bytes`,
    [origins, ids],
  );
  const tombstoned = await q.query<Record<string, unknown>>(
    `UPDATE media m SET location = '' FROM (
       SELECT m2.origin, m2.media_id, m2.location AS old_location FROM media m2
       JOIN unnest($1::text[], $2::text[]) AS k(o, i) ON m2.origin = k.o AND m2.media_id = k.i
       WHERE m2.quarantined AND m2.location <> '' FOR UPDATE OF m2) old
     WHERE m.origin = old.origin AND m.media_id = old.media_id
     RETURNING m.origin, m.media_id, m.datastore_id, old.old_location AS location, m.sha256_hash, m.size_bytes`,
    [origins, ids],
  );
  // Thumbnails last: a thumbnail being stored holds its media row (holdMediaRow), so the
  // media statements above waited for it and this one sees its row.
  const thumbs = await q.query<Record<string, unknown>>(
    `DELETE FROM thumbnails t USING unnest($1::text[], $2::text[]) AS k(o, i)
     WHERE t.origin = k.o AND t.media_id = k.i
     RETURNING t.datastore_id, t.location, t.sha256_hash, t.size_bytes`,
    [origins, ids],
  );
  const purged = [...deleted.rows, ...tombstoned.rows].map((x) => ({
    origin: x.origin as string,
    mediaId: x.media_id as string,
  }));
  const local = purged.filter((k) => localOrigins.includes(k.origin));
  if (local.length > 0) {
    const [lo, li] = keyArrays(local);
    await q.query(
      `INSERT INTO reserved_media (origin, media_id, reason, reserved_ts)
       SELECT o, i, $3, $4 FROM unnest($1::text[], $2::text[]) AS k(o, i) ON CONFLICT DO NOTHING`,
      [lo, li, reason, Date.now()],
    );
  }
  return { purged, freed: [...blobs(thumbs.rows), ...blobs(deleted.rows), ...blobs(tombstoned.rows)] };
}

/** Thumbnail rows created before `beforeTs` (thumbnails.expireAfterDays), a batch at a time:
 * the media they were of (each once, for cache invalidation) and the blobs that lost a reference. */
export async function purgeThumbnailsBefore(
  q: Queryable,
  beforeTs: number,
  limit: number,
): Promise<{ media: MediaKey[]; freed: FreedBlob[] }> {
  const r = await q.query<Record<string, unknown>>(
    `DELETE FROM thumbnails t USING (
       SELECT origin, media_id, width, height, method, animated FROM thumbnails
       WHERE creation_ts < $1 ORDER BY creation_ts LIMIT $2) old
     WHERE t.origin = old.origin AND t.media_id = old.media_id AND t.width = old.width
       AND t.height = old.height AND t.method = old.method AND t.animated = old.animated
     RETURNING t.origin, t.media_id, t.datastore_id, t.location, t.sha256_hash, t.size_bytes`,
    [beforeTs, limit],
  );
  const media = new Map<string, MediaKey>();
  for (const x of r.rows) {
    const k = { origin: x.origin as string, mediaId: x.media_id as string };
    media.set(`${k.origin}/${k.mediaId}`, k);
  }
  return { media: [...media.values()], freed: blobs(r.rows) };
}

/** The hash locks of a batch, in sorted order (two purges never wait on each other in a cycle). */
export { lockHashes } from './media.js';

/** Of these blobs, those no row points at (noReference; run under their hash locks). */
export async function unreferenced(q: Queryable, candidates: FreedBlob[]): Promise<FreedBlob[]> {
  if (candidates.length === 0) return [];
  const r = await q.query<Record<string, unknown>>(
    `SELECT DISTINCT b.ds AS datastore_id, b.loc AS location FROM unnest($1::text[], $2::text[]) AS b(ds, loc)
     WHERE ${noReference('b.ds', 'b.loc')}`,
    [candidates.map((c) => c.datastoreId), candidates.map((c) => c.location)],
  );
  const free = new Set(r.rows.map((x) => `${x.datastore_id as string}\n${x.location as string}`));
  const seen = new Set<string>();
  return candidates.filter((c) => {
    const k = `${c.datastoreId}\n${c.location}`;
    if (!free.has(k) || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export async function isReserved(q: Queryable, origin: string, mediaId: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM reserved_media WHERE origin = $1 AND media_id = $2', [origin, mediaId]);
  return r.rows.length > 0;
}

/** Records freed blobs in the purge's row transaction (see pending_blob_deletes). */
export async function notePendingDeletes(q: Queryable, freed: FreedBlob[]): Promise<void> {
  if (freed.length === 0) return;
  await q.query(
    `INSERT INTO pending_blob_deletes (datastore_id, location, sha256_hash, size_bytes, created_ts)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) ON CONFLICT DO NOTHING`,
    [
      freed.map((b) => b.datastoreId),
      freed.map((b) => b.location),
      freed.map((b) => b.sha256),
      freed.map((b) => b.sizeBytes),
      freed.map(() => Date.now()),
    ],
  );
}

/**
 * Removes these blobs from the pending list (under their hash locks); returns `datastore\nlocation`
 * of those this call removed. Only those are this caller's to delete: a blob two purges freed is
 * deleted (and its bytes uncounted) by whichever got to its pending row first.
 */
export async function clearPendingDeletes(q: Queryable, done: FreedBlob[]): Promise<Set<string>> {
  if (done.length === 0) return new Set();
  const r = await q.query<Record<string, unknown>>(
    `DELETE FROM pending_blob_deletes p USING unnest($1::text[], $2::text[]) AS d(ds, loc)
     WHERE p.datastore_id = d.ds AND p.location = d.loc RETURNING p.datastore_id, p.location`,
    [done.map((b) => b.datastoreId), done.map((b) => b.location)],
  );
  return new Set(r.rows.map((x) => `${x.datastore_id as string}\n${x.location as string}`));
}

/** Freed blobs an interrupted purge left, oldest first. */
export async function pendingDeletes(q: Queryable, limit: number): Promise<FreedBlob[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT datastore_id, location, sha256_hash, size_bytes FROM pending_blob_deletes
     ORDER BY created_ts, datastore_id, location LIMIT $1`,
    [limit],
  );
  return blobs(r.rows);
}
