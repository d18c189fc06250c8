import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for the url_previews table (see migrations/0003_url_previews.up.sql).

export interface PreviewKey {
  serverName: string;
  url: string;
  /** Start of the hour the preview is for, ms. */
  bucketTs: number;
  /** The Accept-Language the page was fetched with. */
  language: string;
}

export type StoredPreview =
  | { ok: true; json: string; creationTs: number }
  | { ok: false; errcode: string; status: number; message: string; creationTs: number };

export async function getPreview(q: Queryable, k: PreviewKey): Promise<StoredPreview | null> {
  const r = await q.query(
    'SELECT preview_json, error_code, error_status, error_message, creation_ts FROM url_previews WHERE server_name = $1 AND url = $2 AND bucket_ts = $3 AND language = $4',
    [k.serverName, k.url, k.bucketTs, k.language],
  );
  const row = r.rows[0];
  if (!row) return null;
  const creationTs = num(row.creation_ts);
  if (row.error_code)
    return {
      ok: false,
      errcode: row.error_code as string,
      status: num(row.error_status),
      message: (row.error_message as string) ?? '',
      creationTs,
    };
  return { ok: true, json: row.preview_json as string, creationTs };
}

/** Stores a result; a row another request or instance stored first is kept. */
export async function putPreview(q: Queryable, k: PreviewKey, p: StoredPreview): Promise<void> {
  await q.query(
    `INSERT INTO url_previews (server_name, url, bucket_ts, language, preview_json, error_code, error_status, error_message, creation_ts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (server_name, url, bucket_ts, language) DO NOTHING`,
    [
      k.serverName,
      k.url,
      k.bucketTs,
      k.language,
      p.ok ? p.json : null,
      p.ok ? null : p.errcode,
      p.ok ? null : p.status,
      p.ok ? null : p.message,
      p.creationTs,
    ],
  );
}
