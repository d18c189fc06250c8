import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for MMR's read-only usage API (admin/usage/...). Every query is scoped to one
// origin (the leading column of both tables' primary keys) and every list has a LIMIT: an
// admin asking about a server with millions of rows gets a bounded answer, never all of it.
//
// Bytes are summed per row, as MMR did: two rows sharing one deduplicated blob count twice.
// This is "what the server's users stored", not "what the disks hold" (that is
// bytesPerDatastore in media.ts). Quarantined rows count too, as in MMR.

export interface ServerUsage {
  mediaBytes: number;
  mediaCount: number;
  thumbnailBytes: number;
  thumbnailCount: number;
}

export async function serverUsage(q: Queryable, origin: string): Promise<ServerUsage> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT
       (SELECT COALESCE(SUM(size_bytes), 0) FROM media WHERE origin = $1) AS media_bytes,
       (SELECT COUNT(*) FROM media WHERE origin = $1) AS media_count,
       (SELECT COALESCE(SUM(size_bytes), 0) FROM thumbnails WHERE origin = $1) AS thumbnail_bytes,
       (SELECT COUNT(*) FROM thumbnails WHERE origin = $1) AS thumbnail_count`,
    [origin],
  );
  const row = r.rows[0]!;
  return {
    mediaBytes: num(row.media_bytes),
    mediaCount: num(row.media_count),
    thumbnailBytes: num(row.thumbnail_bytes),
    thumbnailCount: num(row.thumbnail_count),
  };
}

export interface UserTotals {
  userId: string;
  bytes: number;
  count: number;
}

/**
 * Per-uploader totals for one origin, by user ID, at most `maxUsers` of them. `userIds` null
 * means every uploader (remote media rows, whose uploader is unknown, group under '').
 */
export async function userTotals(
  q: Queryable,
  origin: string,
  userIds: readonly string[] | null,
  maxUsers: number,
): Promise<UserTotals[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT user_id, COALESCE(SUM(size_bytes), 0) AS bytes, COUNT(*) AS n FROM media
     WHERE origin = $1 ${userIds ? 'AND user_id = ANY($3::text[])' : ''}
     GROUP BY user_id ORDER BY user_id COLLATE "C" LIMIT $2`,
    userIds ? [origin, maxUsers, userIds] : [origin, maxUsers],
  );
  return r.rows.map((x) => ({ userId: x.user_id as string, bytes: num(x.bytes), count: num(x.n) }));
}

/**
 * The media IDs each of `userIds` uploaded to `origin`, oldest first, at most `perUser` per
 * user and `maxTotal` in all (ordered by user ID, so a cut falls on the last users listed).
 */
export async function userUploads(
  q: Queryable,
  origin: string,
  userIds: readonly string[],
  perUser: number,
  maxTotal: number,
): Promise<{ userId: string; mediaId: string }[]> {
  if (userIds.length === 0) return [];
  const r = await q.query<Record<string, unknown>>(
    `SELECT user_id, media_id FROM (
       SELECT user_id, media_id,
              ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY creation_ts, media_id COLLATE "C") AS n
       FROM media WHERE origin = $1 AND user_id = ANY($2::text[])
     ) ranked WHERE n <= $3 ORDER BY user_id COLLATE "C", n LIMIT $4`,
    [origin, userIds, perUser, maxTotal],
  );
  return r.rows.map((x) => ({ userId: x.user_id as string, mediaId: x.media_id as string }));
}

export interface UploadRow {
  mediaId: string;
  sizeBytes: number;
  userId: string;
  datastoreId: string;
  location: string;
  sha256: string;
  quarantined: boolean;
  uploadName: string | null;
  contentType: string | null;
  creationTs: number;
}

/** Media rows of one origin (those of `mediaIds`, or all), oldest first, at most `limit`. */
export async function uploadsOf(
  q: Queryable,
  origin: string,
  mediaIds: readonly string[] | null,
  limit: number,
): Promise<UploadRow[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT media_id, size_bytes, user_id, datastore_id, location, sha256_hash, quarantined, upload_name,
            content_type, creation_ts
     FROM media WHERE origin = $1 ${mediaIds ? 'AND media_id = ANY($3::text[])' : ''}
     ORDER BY creation_ts, media_id COLLATE "C" LIMIT $2`,
    mediaIds ? [origin, limit, mediaIds] : [origin, limit],
  );
  return r.rows.map((x) => ({
    mediaId: x.media_id as string,
    sizeBytes: num(x.size_bytes),
    userId: x.user_id as string,
    datastoreId: x.datastore_id as string,
    location: x.location as string,
    sha256: x.sha256_hash as string,
    quarantined: Boolean(x.quarantined),
    uploadName: (x.upload_name as string | null) ?? null,
    contentType: (x.content_type as string | null) ?? null,
    creationTs: num(x.creation_ts),
  }));
}

export type UserStatsOrder = 'media_count' | 'media_length' | 'user_id';

export interface UserStatsQuery {
  origin: string;
  orderBy: UserStatsOrder;
  /** Ascending ('f') or descending ('b'). */
  ascending: boolean;
  /** Offset into the ordered list (Synapse's `from` / `next_token`). */
  from: number;
  limit: number;
  /** creation_ts bounds, inclusive; null when not given. */
  fromTs: number | null;
  untilTs: number | null;
  /** A substring of the user ID, matched literally; null when not given. */
  search: string | null;
}

export interface UserStat {
  userId: string;
  mediaCount: number;
  mediaLength: number;
}

/** LIKE's own characters in `s` escaped, so `%`, `_` and `\` match only themselves. */
export function likeLiteral(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

// The ORDER BY column is picked from a fixed map, never spliced in from the request. User IDs
// sort by code point (COLLATE "C"), so the order is the same on every server and locale.
const ORDER_COLUMNS: Record<UserStatsOrder, string> = {
  media_count: 'media_count',
  media_length: 'media_length',
  user_id: 'user_id COLLATE "C"',
};

/**
 * Synapse's users-media statistics for one origin: one page of uploaders (rows with no
 * uploader, i.e. remote media, left out) and how many there are in all. Paged by offset,
 * as Synapse's `from` is; ties are broken by user ID so pages neither repeat nor skip.
 */
export async function userStatsPage(q: Queryable, s: UserStatsQuery): Promise<{ rows: UserStat[]; total: number }> {
  const params: unknown[] = [s.origin];
  const where = ['origin = $1', "user_id <> ''"];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    where.push(clause.replace('?', `$${params.length}`));
  };
  if (s.fromTs !== null) add('creation_ts >= ?', s.fromTs);
  if (s.untilTs !== null) add('creation_ts <= ?', s.untilTs);
  if (s.search !== null) add("user_id LIKE ? ESCAPE '\\'", `%${likeLiteral(s.search)}%`);
  const grouped = `SELECT user_id, COUNT(*) AS media_count, COALESCE(SUM(size_bytes), 0) AS media_length
                   FROM media WHERE ${where.join(' AND ')} GROUP BY user_id`;
  const dir = s.ascending ? 'ASC' : 'DESC';
  const order = `${ORDER_COLUMNS[s.orderBy]} ${dir}${s.orderBy === 'user_id' ? '' : `, ${ORDER_COLUMNS.user_id} ${dir}`}`;
  const page = await q.query<Record<string, unknown>>(
    `${grouped} ORDER BY ${order} LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, s.limit, s.from],
  );
  const total = await q.query<Record<string, unknown>>(`SELECT COUNT(*) AS n FROM (${grouped}) users`, params);
  return {
    rows: page.rows.map((x) => ({
      userId: x.user_id as string,
      mediaCount: num(x.media_count),
      mediaLength: num(x.media_length),
    })),
    total: num(total.rows[0]!.n),
  };
}
