import { num, type Queryable } from './driver.js';

// Named SQL for GDPR archives made and taken in by the server (migrations/0008_exports.up.sql):
// exports with their parts, and uploaded archives waiting to be imported with theirs.

export interface ExportRow {
  exportId: string;
  entity: string;
  origin: string;
  createdTs: number;
  finishedTs: number | null;
  error: string | null;
  taskId: number | null;
}

/** A stored archive part (of an export, or uploaded for an import). */
export interface StoredPart {
  index: number;
  sizeBytes: number;
  sha256: string;
  datastoreId: string;
  location: string;
}

export interface ExportPartRow extends StoredPart {
  fileName: string;
}

export interface ImportRow {
  importId: string;
  origin: string;
  createdTs: number;
  closedTs: number | null;
  taskId: number | null;
}

const nullableNum = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

export async function insertExport(
  q: Queryable,
  e: { exportId: string; entity: string; origin: string; createdTs: number },
): Promise<void> {
  await q.query('INSERT INTO exports (export_id, entity, origin, created_ts) VALUES ($1, $2, $3, $4)', [
    e.exportId,
    e.entity,
    e.origin,
    e.createdTs,
  ]);
}

export async function setExportTask(q: Queryable, exportId: string, taskId: number): Promise<void> {
  await q.query('UPDATE exports SET task_id = $2 WHERE export_id = $1', [exportId, taskId]);
}

export async function getExport(q: Queryable, exportId: string): Promise<ExportRow | null> {
  const r = await q.query<Record<string, unknown>>(
    'SELECT export_id, entity, origin, created_ts, finished_ts, error, task_id FROM exports WHERE export_id = $1',
    [exportId],
  );
  const x = r.rows[0];
  if (!x) return null;
  return {
    exportId: x.export_id as string,
    entity: x.entity as string,
    origin: x.origin as string,
    createdTs: num(x.created_ts),
    finishedTs: nullableNum(x.finished_ts),
    error: (x.error as string | null) ?? null,
    taskId: nullableNum(x.task_id),
  };
}

/** Marks the export done (error null) or failed. */
export async function finishExport(q: Queryable, exportId: string, ts: number, error: string | null): Promise<void> {
  await q.query('UPDATE exports SET finished_ts = $2, error = $3 WHERE export_id = $1', [exportId, ts, error]);
}

/** Whether the row was inserted (false: the export was deleted meanwhile). */
export async function insertExportPart(q: Queryable, exportId: string, p: ExportPartRow): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO export_parts (export_id, part_index, size_bytes, file_name, sha256, datastore_id, location)
     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM exports WHERE export_id = $1)`,
    [exportId, p.index, p.sizeBytes, p.fileName, p.sha256, p.datastoreId, p.location],
  );
  return r.rowCount === 1;
}

function partOf(x: Record<string, unknown>): StoredPart {
  return {
    index: num(x.part_index),
    sizeBytes: num(x.size_bytes),
    sha256: x.sha256 as string,
    datastoreId: x.datastore_id as string,
    location: x.location as string,
  };
}

/** An export's parts in index order (an export has a few hundred at most: 200 MiB each). */
export async function exportParts(q: Queryable, exportId: string): Promise<ExportPartRow[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT part_index, size_bytes, file_name, sha256, datastore_id, location FROM export_parts
     WHERE export_id = $1 ORDER BY part_index`,
    [exportId],
  );
  return r.rows.map((x) => ({ ...partOf(x), fileName: x.file_name as string }));
}

export async function exportPart(q: Queryable, exportId: string, index: number): Promise<ExportPartRow | null> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT part_index, size_bytes, file_name, sha256, datastore_id, location FROM export_parts
     WHERE export_id = $1 AND part_index = $2`,
    [exportId, index],
  );
  const x = r.rows[0];
  return x ? { ...partOf(x), fileName: x.file_name as string } : null;
}

/** Drops an export's part rows (a restarted task starts over); returns them so their objects can go. */
export async function clearExportParts(q: Queryable, exportId: string): Promise<StoredPart[]> {
  const r = await q.query<Record<string, unknown>>(
    'DELETE FROM export_parts WHERE export_id = $1 RETURNING part_index, size_bytes, sha256, datastore_id, location',
    [exportId],
  );
  return r.rows.map(partOf);
}

/** Deletes the export and its part rows; returns the parts (empty when there was no such export). */
export async function deleteExportRows(q: Queryable, exportId: string): Promise<StoredPart[] | null> {
  const parts = await clearExportParts(q, exportId);
  const r = await q.query('DELETE FROM exports WHERE export_id = $1', [exportId]);
  return r.rowCount === 1 ? parts : null;
}

export async function insertImport(
  q: Queryable,
  i: { importId: string; origin: string; createdTs: number; taskId: number },
): Promise<void> {
  await q.query('INSERT INTO archive_imports (import_id, origin, created_ts, task_id) VALUES ($1, $2, $3, $4)', [
    i.importId,
    i.origin,
    i.createdTs,
    i.taskId,
  ]);
}

export async function getImport(q: Queryable, importId: string): Promise<ImportRow | null> {
  const r = await q.query<Record<string, unknown>>(
    'SELECT import_id, origin, created_ts, closed_ts, task_id FROM archive_imports WHERE import_id = $1',
    [importId],
  );
  const x = r.rows[0];
  if (!x) return null;
  return {
    importId: x.import_id as string,
    origin: x.origin as string,
    createdTs: num(x.created_ts),
    closedTs: nullableNum(x.closed_ts),
    taskId: nullableNum(x.task_id),
  };
}

/**
 * Appends an uploaded part to an open import, numbered after those already there; the import
 * row is locked so two parts posted at once get different numbers. Null when the import is
 * unknown or already closed; `tooMany` when it holds `maxParts`.
 */
export async function addImportPart(
  q: Queryable,
  importId: string,
  p: Omit<StoredPart, 'index'>,
  maxParts: number,
): Promise<number | null | 'tooMany'> {
  const open = await q.query('SELECT 1 FROM archive_imports WHERE import_id = $1 AND closed_ts IS NULL FOR UPDATE', [
    importId,
  ]);
  if (open.rows.length === 0) return null;
  const n = await q.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM archive_import_parts WHERE import_id = $1', [
    importId,
  ]);
  const index = num(n.rows[0]?.n ?? 0) + 1;
  if (index > maxParts) return 'tooMany';
  await q.query(
    `INSERT INTO archive_import_parts (import_id, part_index, size_bytes, sha256, datastore_id, location)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [importId, index, p.sizeBytes, p.sha256, p.datastoreId, p.location],
  );
  return index;
}

export async function importParts(q: Queryable, importId: string): Promise<StoredPart[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT part_index, size_bytes, sha256, datastore_id, location FROM archive_import_parts
     WHERE import_id = $1 ORDER BY part_index`,
    [importId],
  );
  return r.rows.map(partOf);
}

/** Closes an open import; false when it is unknown or was closed already. */
export async function closeImport(q: Queryable, importId: string, ts: number): Promise<boolean> {
  const r = await q.query('UPDATE archive_imports SET closed_ts = $2 WHERE import_id = $1 AND closed_ts IS NULL', [
    importId,
    ts,
  ]);
  return r.rowCount === 1;
}

/** Deletes the import and its part rows; returns the parts so their objects can go. */
export async function deleteImportRows(q: Queryable, importId: string): Promise<StoredPart[]> {
  const r = await q.query<Record<string, unknown>>(
    `DELETE FROM archive_import_parts WHERE import_id = $1
     RETURNING part_index, size_bytes, sha256, datastore_id, location`,
    [importId],
  );
  await q.query('DELETE FROM archive_imports WHERE import_id = $1', [importId]);
  return r.rows.map(partOf);
}

/**
 * Makes a task that was inserted with a start in the future (an import waiting for its parts)
 * due now. The runner's claim query skips tasks whose start_ts is still ahead.
 */
export async function makeTaskDue(q: Queryable, taskId: number, now: number): Promise<void> {
  await q.query('UPDATE background_tasks SET start_ts = $2 WHERE id = $1 AND end_ts IS NULL', [taskId, now]);
}
