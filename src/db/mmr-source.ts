import type { Queryable } from './driver.js';
import { num } from './driver.js';
import type { MediaRow } from './media.js';

// Named SQL that reads an MMR database (its schema: shared/reference/mmr-feature-inventory.md
// §3), for `media-repo import mmr`. Read-only: the connection is opened with
// default_transaction_read_only, and nothing here writes. Every table is read in keyset order
// along one of MMR's unique indexes, a batch at a time, so neither side holds a whole table.

/** MMR's media row carries exactly our fields (its freeze flag from restricted_media). */
export type MmrMedia = MediaRow;

export interface MmrThumbnail {
  origin: string;
  mediaId: string;
  width: number;
  height: number;
  method: string;
  animated: boolean;
  contentType: string;
  sizeBytes: number;
  sha256: string;
  datastoreId: string;
  location: string;
  creationTs: number;
}

export interface MmrKeyed {
  origin: string;
  mediaId: string;
}
export interface MmrAttribute extends MmrKeyed {
  purpose: string;
}
export interface MmrReserved extends MmrKeyed {
  reason: string;
}
export interface MmrReservation extends MmrKeyed {
  userId: string;
  expiresTs: number;
}

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

/** MMR tables this importer reads, and whether each exists (older MMRs lack some). */
export async function mmrTables(q: Queryable): Promise<Record<string, boolean>> {
  const names = ['media', 'thumbnails', 'restricted_media', 'media_attributes', 'reserved_media', 'expiring_media'];
  const r = await q.query<{ name: string; present: boolean }>(
    'SELECT n AS name, to_regclass(n) IS NOT NULL AS present FROM unnest($1::text[]) AS n',
    [names],
  );
  return Object.fromEntries(r.rows.map((x) => [x.name, Boolean(x.present)]));
}

/** Columns of MMR's media table this importer needs that the database lacks (an MMR older than 1.3). */
export async function mmrMissingColumns(q: Queryable): Promise<string[]> {
  const need = [
    'media.sha256_hash',
    'media.datastore_id',
    'media.quarantined',
    'thumbnails.sha256_hash',
    'thumbnails.datastore_id',
    'thumbnails.animated',
  ];
  const r = await q.query<{ col: string }>(
    `SELECT table_name || '.' || column_name AS col FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name IN ('media', 'thumbnails')`,
  );
  const have = new Set(r.rows.map((x) => x.col));
  return need.filter((c) => !have.has(c));
}

/** Every datastore ID a media or thumbnail row names (MMR indexes datastore_id on both). */
export async function mmrDatastoreIds(q: Queryable, withThumbnails: boolean): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    `SELECT DISTINCT datastore_id AS id FROM media${withThumbnails ? ' UNION SELECT DISTINCT datastore_id FROM thumbnails' : ''}`,
  );
  return r.rows.map((x) => x.id).sort();
}

export async function mmrCount(q: Queryable, table: string): Promise<number> {
  const r = await q.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${table}`);
  return num(r.rows[0]!.n);
}

/** Media after `after` = [media_id, origin] in MMR's unique index order. */
export async function mmrMediaBatch(q: Queryable, after: string[] | null, limit: number, restricted: boolean) {
  const r = await q.query<Record<string, unknown>>(
    `SELECT m.origin, m.media_id, m.upload_name, m.content_type, m.user_id, m.sha256_hash, m.size_bytes,
            m.datastore_id, m.location, m.creation_ts, m.quarantined,
            ${
              restricted
                ? `EXISTS (SELECT 1 FROM restricted_media r WHERE r.origin = m.origin AND r.media_id = m.media_id
                     AND r.condition_type = 'io.t2bot.requires_authentication' AND r.condition_value = 'true')`
                : 'FALSE'
            } AS requires_auth
     FROM media m ${after ? 'WHERE (m.media_id, m.origin) > ($2, $3)' : ''}
     ORDER BY m.media_id, m.origin LIMIT $1`,
    after ? [limit, ...after] : [limit],
  );
  const rows: MmrMedia[] = r.rows.map((x) => ({
    origin: String(x.origin),
    mediaId: String(x.media_id),
    uploadName: str(x.upload_name),
    contentType: str(x.content_type),
    userId: String(x.user_id ?? ''),
    sha256: String(x.sha256_hash),
    sizeBytes: num(x.size_bytes),
    datastoreId: String(x.datastore_id),
    location: String(x.location),
    creationTs: num(x.creation_ts),
    quarantined: Boolean(x.quarantined),
    requiresAuth: Boolean(x.requires_auth),
  }));
  const last = rows[rows.length - 1];
  return { rows, next: last ? [last.mediaId, last.origin] : null };
}

/** Thumbnails after `after` in MMR's unique index order (media_id, origin, width, height, method, animated). */
export async function mmrThumbnailBatch(q: Queryable, after: unknown[] | null, limit: number) {
  const r = await q.query<Record<string, unknown>>(
    `SELECT origin, media_id, width, height, method, animated, content_type, size_bytes, sha256_hash,
            datastore_id, location, creation_ts
     FROM thumbnails ${after ? 'WHERE (media_id, origin, width, height, method, animated) > ($2, $3, $4, $5, $6, $7)' : ''}
     ORDER BY media_id, origin, width, height, method, animated LIMIT $1`,
    after ? [limit, ...after] : [limit],
  );
  const rows: MmrThumbnail[] = r.rows.map((x) => ({
    origin: String(x.origin),
    mediaId: String(x.media_id),
    width: num(x.width),
    height: num(x.height),
    method: String(x.method),
    animated: Boolean(x.animated),
    contentType: String(x.content_type),
    sizeBytes: num(x.size_bytes),
    sha256: String(x.sha256_hash),
    datastoreId: String(x.datastore_id),
    location: String(x.location),
    creationTs: num(x.creation_ts),
  }));
  const l = rows[rows.length - 1];
  return { rows, next: l ? [l.mediaId, l.origin, l.width, l.height, l.method, l.animated] : null };
}

/** One of the small keyed tables (media_attributes, reserved_media, expiring_media) after [media_id, origin]. */
async function keyedBatch(q: Queryable, table: string, columns: string, after: string[] | null, limit: number) {
  const r = await q.query<Record<string, unknown>>(
    `SELECT origin, media_id, ${columns} FROM ${table} ${after ? 'WHERE (media_id, origin) > ($2, $3)' : ''}
     ORDER BY media_id, origin LIMIT $1`,
    after ? [limit, ...after] : [limit],
  );
  const last = r.rows[r.rows.length - 1];
  return { raw: r.rows, next: last ? [String(last.media_id), String(last.origin)] : null };
}

export async function mmrAttributeBatch(q: Queryable, after: string[] | null, limit: number) {
  const b = await keyedBatch(q, 'media_attributes', 'purpose', after, limit);
  const rows: MmrAttribute[] = b.raw.map((x) => ({
    origin: String(x.origin),
    mediaId: String(x.media_id),
    purpose: String(x.purpose),
  }));
  return { rows, next: b.next };
}

export async function mmrReservedBatch(q: Queryable, after: string[] | null, limit: number) {
  const b = await keyedBatch(q, 'reserved_media', 'reason', after, limit);
  const rows: MmrReserved[] = b.raw.map((x) => ({
    origin: String(x.origin),
    mediaId: String(x.media_id),
    reason: String(x.reason ?? ''),
  }));
  return { rows, next: b.next };
}

export async function mmrReservationBatch(q: Queryable, after: string[] | null, limit: number) {
  const b = await keyedBatch(q, 'expiring_media', 'user_id, expires_ts', after, limit);
  const rows: MmrReservation[] = b.raw.map((x) => ({
    origin: String(x.origin),
    mediaId: String(x.media_id),
    userId: String(x.user_id),
    expiresTs: num(x.expires_ts),
  }));
  return { rows, next: b.next };
}

/** Distinct blobs (datastore_id, location) after `after`, with a hash and size for each (verification). */
export async function mmrBlobBatch(q: Queryable, table: 'media' | 'thumbnails', after: string[] | null, limit: number) {
  const r = await q.query<Record<string, unknown>>(
    `SELECT datastore_id, location, MIN(sha256_hash) AS sha256_hash, MIN(size_bytes) AS size_bytes FROM ${table}
     ${after ? 'WHERE (datastore_id, location) > ($2, $3)' : ''}
     GROUP BY datastore_id, location ORDER BY datastore_id, location LIMIT $1`,
    after ? [limit, ...after] : [limit],
  );
  const rows = r.rows.map((x) => ({
    datastoreId: String(x.datastore_id),
    location: String(x.location),
    sha256: String(x.sha256_hash),
    sizeBytes: num(x.size_bytes),
  }));
  const last = rows[rows.length - 1];
  return { rows, next: last ? [last.datastoreId, last.location] : null };
}
