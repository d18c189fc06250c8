import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for the expiry task's preview step (urlPreviews.expireAfterDays). A preview's image
// is ordinary local media named by `og:image` inside preview_json, so old rows are read a batch
// at a time, their images purged where nothing newer names them, and then the rows deleted.

export interface OldPreview {
  serverName: string;
  url: string;
  bucketTs: number;
  language: string;
  /** NULL for a cached failure. */
  json: string | null;
}

/** The oldest previews created before `beforeTs`, at most `limit` (the creation_ts index). */
export async function oldPreviews(q: Queryable, beforeTs: number, limit: number): Promise<OldPreview[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT server_name, url, bucket_ts, language, preview_json FROM url_previews
     WHERE creation_ts < $1 ORDER BY creation_ts LIMIT $2`,
    [beforeTs, limit],
  );
  return r.rows.map((x) => ({
    serverName: x.server_name as string,
    url: x.url as string,
    bucketTs: num(x.bucket_ts),
    language: x.language as string,
    json: (x.preview_json as string | null) ?? null,
  }));
}

/** Deletes exactly these preview rows; returns how many went. */
export async function deletePreviewRows(q: Queryable, rows: OldPreview[]): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await q.query(
    `DELETE FROM url_previews p USING unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS k(s, u, b, l)
     WHERE p.server_name = k.s AND p.url = k.u AND p.bucket_ts = k.b AND p.language = k.l`,
    [rows.map((x) => x.serverName), rows.map((x) => x.url), rows.map((x) => x.bucketTs), rows.map((x) => x.language)],
  );
  return r.rowCount ?? 0;
}

/**
 * Of these image mxc URIs, those a preview created at or after `sinceTs` still names. One pass
 * over the newer rows per batch: only rows with an image are parsed (no index on the JSON).
 */
export async function imagesNamedSince(q: Queryable, mxcs: string[], sinceTs: number): Promise<Set<string>> {
  if (mxcs.length === 0) return new Set();
  const r = await q.query<{ mxc: string }>(
    `SELECT DISTINCT (preview_json::jsonb)->>'og:image' AS mxc FROM url_previews
     WHERE creation_ts >= $2 AND preview_json LIKE '%"og:image"%'
       AND (preview_json::jsonb)->>'og:image' = ANY($1::text[])`,
    [mxcs, sinceTs],
  );
  return new Set(r.rows.map((x) => x.mxc));
}
