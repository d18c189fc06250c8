import { num, type Queryable } from './driver.js';
import { MEDIA_COLUMNS, toRow, type MediaRow } from './media.js';

// The SQL an export needs: one entity's media in keyset batches (origin, media_id order, the
// primary key), so a server with millions of rows is read a batch at a time. Quarantined rows
// and tombstones (no blob) are left out: their bytes are not served, so not exported either.

export type ExportEntity = { user: string; origin: string } | { server: string };

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
