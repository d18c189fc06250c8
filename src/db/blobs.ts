import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Queries over the blobs that media and thumbnail rows point at, per datastore: size estimates,
// transfers and consistency checks. A blob is one (datastore_id, location); many rows of either
// table may share it.

/**
 * The condition that no row keeps the object (datastore `ds`, location `loc`, SQL expressions):
 * media and thumbnail rows, and the GDPR archive parts (export_parts, archive_import_parts),
 * which live in the same datastores under the same content addresses. Every reference check
 * that frees an object uses it, so none of them forgets a kind of row.
 */
export function noReference(ds: string, loc: string): string {
  return ['media', 'thumbnails', 'export_parts', 'archive_import_parts']
    .map((t) => `NOT EXISTS (SELECT 1 FROM ${t} WHERE datastore_id = ${ds} AND location = ${loc})`)
    .join(' AND ');
}

const BOTH = `(SELECT datastore_id, location, sha256_hash, size_bytes, creation_ts, 'media' AS kind FROM media
  UNION ALL SELECT datastore_id, location, sha256_hash, size_bytes, creation_ts, 'thumbnail' AS kind FROM thumbnails) b`;

/** MMR's size_estimate response (its key names), for rows created before `beforeTs`. */
export interface SizeEstimate {
  thumbnails_affected: number;
  thumbnail_hashes_affected: number;
  thumbnail_bytes: number;
  media_affected: number;
  media_hashes_affected: number;
  media_bytes: number;
  total_hashes_affected: number;
  total_bytes: number;
}

async function tally(
  q: Queryable,
  from: string,
  datastoreId: string,
  beforeTs: number,
): Promise<{ rows: number; hashes: number; bytes: number }> {
  // Bytes count each blob once (a deduplicated blob occupies its bytes once); rows count all.
  const r = await q.query<Record<string, unknown>>(
    `SELECT (SELECT COUNT(*) FROM ${from} WHERE datastore_id = $1 AND creation_ts < $2) AS n,
            COUNT(DISTINCT sha256_hash) AS hashes, COALESCE(SUM(size_bytes), 0) AS bytes
     FROM (SELECT DISTINCT location, sha256_hash, size_bytes FROM ${from} WHERE datastore_id = $1 AND creation_ts < $2) d`,
    [datastoreId, beforeTs],
  );
  const x = r.rows[0]!;
  return { rows: num(x.n), hashes: num(x.hashes), bytes: num(x.bytes) };
}

export async function sizeEstimate(q: Queryable, datastoreId: string, beforeTs: number): Promise<SizeEstimate> {
  const m = await tally(q, 'media', datastoreId, beforeTs);
  const t = await tally(q, 'thumbnails', datastoreId, beforeTs);
  const all = await tally(q, BOTH, datastoreId, beforeTs);
  return {
    thumbnails_affected: t.rows,
    thumbnail_hashes_affected: t.hashes,
    thumbnail_bytes: t.bytes,
    media_affected: m.rows,
    media_hashes_affected: m.hashes,
    media_bytes: m.bytes,
    total_hashes_affected: all.hashes,
    total_bytes: all.bytes,
  };
}

export interface BlobRef {
  location: string;
  sha256: string;
  sizeBytes: number;
}

/**
 * The next blobs (by location, after `afterLocation`) that some row created before `beforeTs`
 * keeps in the datastore. Moved blobs no longer appear (their rows point elsewhere), which is
 * what makes a resumed transfer skip them.
 */
export async function blobsBefore(
  q: Queryable,
  datastoreId: string,
  beforeTs: number,
  afterLocation: string,
  limit: number,
): Promise<BlobRef[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT DISTINCT location, sha256_hash, size_bytes FROM ${BOTH}
     WHERE datastore_id = $1 AND creation_ts < $2 AND location > $3 ORDER BY location LIMIT $4`,
    [datastoreId, beforeTs, afterLocation, limit],
  );
  return r.rows.map((x) => ({
    location: x.location as string,
    sha256: x.sha256_hash as string,
    sizeBytes: num(x.size_bytes),
  }));
}

/**
 * Points every media and thumbnail row of one blob at its copy; returns the media whose rows
 * moved (their own or their thumbnails'), so row caches can forget them.
 */
export async function repointBlob(
  q: Queryable,
  from: { datastoreId: string; location: string },
  to: { datastoreId: string; location: string },
): Promise<{ origin: string; mediaId: string; thumbnail: boolean }[]> {
  const out: { origin: string; mediaId: string; thumbnail: boolean }[] = [];
  for (const table of ['media', 'thumbnails']) {
    const r = await q.query<{ origin: string; media_id: string }>(
      `UPDATE ${table} SET datastore_id = $3, location = $4 WHERE datastore_id = $1 AND location = $2 RETURNING origin, media_id`,
      [from.datastoreId, from.location, to.datastoreId, to.location],
    );
    for (const x of r.rows) out.push({ origin: x.origin, mediaId: x.media_id, thumbnail: table === 'thumbnails' });
  }
  return out;
}

export async function blobReferenced(q: Queryable, datastoreId: string, location: string): Promise<boolean> {
  const r = await q.query(`SELECT NOT (${noReference('$1', '$2')}) AS referenced`, [datastoreId, location]);
  return Boolean((r.rows[0] as { referenced: boolean }).referenced);
}

/** Every blob any row keeps in the datastore, with one row naming it (for reports). */
export async function blobsIn(q: Queryable, datastoreId: string): Promise<(BlobRef & { example: string })[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT location, MIN(sha256_hash) AS sha256_hash, MIN(size_bytes) AS size_bytes, MIN(example) AS example FROM
       (SELECT location, sha256_hash, size_bytes, 'mxc://' || origin || '/' || media_id AS example FROM media WHERE datastore_id = $1
        UNION ALL SELECT location, sha256_hash, size_bytes, 'thumbnail of mxc://' || origin || '/' || media_id FROM thumbnails WHERE datastore_id = $1
        UNION ALL SELECT location, sha256, size_bytes, 'part ' || part_index || ' of export ' || export_id FROM export_parts WHERE datastore_id = $1) b
     GROUP BY location ORDER BY location`,
    [datastoreId],
  );
  return r.rows.map((x) => ({
    location: x.location as string,
    sha256: x.sha256_hash as string,
    sizeBytes: num(x.size_bytes),
    example: x.example as string,
  }));
}

/** Datastore IDs that rows point at (a row may name a store no longer configured). */
export async function referencedDatastores(q: Queryable): Promise<string[]> {
  const r = await q.query<{ datastore_id: string }>(
    'SELECT datastore_id FROM media UNION SELECT datastore_id FROM thumbnails',
  );
  return r.rows.map((x) => x.datastore_id);
}

/** Those of `locations` (in one datastore) that no row references (see noReference). */
export async function unreferencedLocations(q: Queryable, datastoreId: string, locations: string[]): Promise<string[]> {
  if (locations.length === 0) return [];
  const r = await q.query<{ location: string }>(
    `SELECT l AS location FROM unnest($2::text[]) AS l WHERE ${noReference('$1', 'l')}`,
    [datastoreId, locations],
  );
  return r.rows.map((x) => x.location);
}
