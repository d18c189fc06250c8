import { num, type Queryable } from '../db/driver.js';
import { MEDIA_COLUMNS, type MediaRow } from '../db/media.js';

// The SQL an export needs: one entity's media in keyset batches (origin, media_id order, the
// primary key), so a server with millions of rows is read a batch at a time. Quarantined rows
// and tombstones (no blob) are left out: their bytes are not served, so not exported either.
// (SQL belongs in src/db/: the lead may move this file to src/db/media-export.ts.)

export type ExportEntity = { user: string; origin: string } | { server: string };

function toRow(r: Record<string, unknown>): MediaRow {
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

/** The next batch after `afterMediaId` ('' for the first). */
export async function exportBatch(
  q: Queryable,
  entity: ExportEntity,
  afterMediaId: string,
  limit: number,
): Promise<MediaRow[]> {
  const where = "NOT quarantined AND location <> '' AND media_id > $2";
  const r =
    'user' in entity
      ? await q.query(
          `SELECT ${MEDIA_COLUMNS} FROM media WHERE origin = $1 AND ${where} AND user_id = $3 ORDER BY media_id LIMIT $4`,
          [entity.origin, afterMediaId, entity.user, limit],
        )
      : await q.query(`SELECT ${MEDIA_COLUMNS} FROM media WHERE origin = $1 AND ${where} ORDER BY media_id LIMIT $3`, [
          entity.server,
          afterMediaId,
          limit,
        ]);
  return r.rows.map(toRow);
}

/** Every row of the entity, batch by batch. */
export async function* exportRows(q: Queryable, entity: ExportEntity, batch = 1000): AsyncGenerator<MediaRow> {
  let after = '';
  for (;;) {
    const rows = await exportBatch(q, entity, after, batch);
    for (const r of rows) yield r;
    if (rows.length < batch) return;
    after = rows[rows.length - 1]!.mediaId;
  }
}

/** How many rows the export will visit (for the progress total). */
export async function exportCount(q: Queryable, entity: ExportEntity): Promise<number> {
  const base = "SELECT COUNT(*) AS n FROM media WHERE origin = $1 AND NOT quarantined AND location <> ''";
  const r =
    'user' in entity
      ? await q.query<{ n: unknown }>(`${base} AND user_id = $2`, [entity.origin, entity.user])
      : await q.query<{ n: unknown }>(base, [entity.server]);
  return num(r.rows[0]?.n ?? 0);
}
