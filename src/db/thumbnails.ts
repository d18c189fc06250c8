import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for the thumbnails table (see migrations/0002_thumbnails.up.sql).

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailKey {
  origin: string;
  mediaId: string;
  /** The bucket (or dynamic size) that was asked of the generator. */
  width: number;
  height: number;
  method: ThumbnailMethod;
  animated: boolean;
}

export interface ThumbnailRow extends ThumbnailKey {
  contentType: string;
  outWidth: number;
  outHeight: number;
  sha256: string;
  sizeBytes: number;
  datastoreId: string;
  location: string;
  creationTs: number;
}

const COLUMNS =
  'origin, media_id, width, height, method, animated, content_type, out_width, out_height, sha256_hash, size_bytes, datastore_id, location, creation_ts';

function toRow(r: Record<string, unknown>): ThumbnailRow {
  return {
    origin: r.origin as string,
    mediaId: r.media_id as string,
    width: num(r.width),
    height: num(r.height),
    method: r.method as ThumbnailMethod,
    animated: Boolean(r.animated),
    contentType: r.content_type as string,
    outWidth: num(r.out_width),
    outHeight: num(r.out_height),
    sha256: r.sha256_hash as string,
    sizeBytes: num(r.size_bytes),
    datastoreId: r.datastore_id as string,
    location: r.location as string,
    creationTs: num(r.creation_ts),
  };
}

const KEY_WHERE = 'origin = $1 AND media_id = $2 AND width = $3 AND height = $4 AND method = $5 AND animated = $6';
const keyParams = (k: ThumbnailKey) => [k.origin, k.mediaId, k.width, k.height, k.method, k.animated];

export async function getThumbnail(q: Queryable, k: ThumbnailKey): Promise<ThumbnailRow | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM thumbnails WHERE ${KEY_WHERE}`, keyParams(k));
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/** The sizes already stored for one media item (pre-generation skips them). */
export async function listThumbnails(q: Queryable, origin: string, mediaId: string): Promise<ThumbnailRow[]> {
  const r = await q.query(`SELECT ${COLUMNS} FROM thumbnails WHERE origin = $1 AND media_id = $2`, [origin, mediaId]);
  return r.rows.map(toRow);
}

/**
 * Inserts unless another request or instance stored the same key first; either way returns
 * the stored row, so every client sees the same bytes for the same parameters.
 */
export async function insertThumbnail(q: Queryable, t: ThumbnailRow): Promise<ThumbnailRow> {
  const r = await q.query(
    `INSERT INTO thumbnails (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (origin, media_id, width, height, method, animated) DO NOTHING`,
    [
      ...keyParams(t),
      t.contentType,
      t.outWidth,
      t.outHeight,
      t.sha256,
      t.sizeBytes,
      t.datastoreId,
      t.location,
      t.creationTs,
    ],
  );
  if (r.rowCount === 1) return t;
  return (await getThumbnail(q, t)) ?? t;
}

/** A stored blob with this hash in either table (thumbnails deduplicate against both). */
export async function findAnyBlobByHash(
  q: Queryable,
  sha256: string,
): Promise<{ datastoreId: string; location: string; sizeBytes: number }[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT datastore_id, location, size_bytes FROM thumbnails WHERE sha256_hash = $1
     UNION SELECT datastore_id, location, size_bytes FROM media WHERE sha256_hash = $1 AND location <> ''`,
    [sha256],
  );
  return r.rows.map((x) => ({
    datastoreId: x.datastore_id as string,
    location: x.location as string,
    sizeBytes: num(x.size_bytes),
  }));
}
