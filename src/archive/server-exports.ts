import { randomBytes } from 'node:crypto';
import { Errors } from '../errors.js';
import type { Db } from '../db/driver.js';
import type { ExportEntity } from '../db/archive-export.js';
import {
  deleteExportRows,
  exportPart,
  exportParts,
  getExport,
  insertExport,
  setExportTask,
  type ExportPartRow,
  type ExportRow,
} from '../db/exports.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { ArchivingSection } from '../config/schema.js';
import type { MediaBody } from '../http/types.js';
import type { TaskRunner } from '../tasks/runner.js';
import { EXPORT_DATA, type ExportDataParams } from '../tasks/export-data.js';
import { dropPartObjects } from './stored-parts.js';
import { exportViewPage } from './view-page.js';

// The server side of MMR's GDPR exports (admin API): start an export task, and serve what it
// made to whoever holds the export ID. The ID is the only secret of the view, metadata, part
// and delete endpoints (MMR's design), so it carries 192 random bits.

export interface ArchiveServiceDeps {
  db: Db;
  datastores: DatastoreRegistry;
  tasks: Pick<TaskRunner, 'enqueue'>;
}

/** A new export or import ID: 24 random bytes, base64url (32 characters). */
export const newArchiveId = (): string => randomBytes(24).toString('base64url');

/** IDs we hand out have this shape; anything else cannot name an export (answered 404, not 400). */
const ID_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

export function archivingEnabled(a: ArchivingSection, what: string): void {
  if (!a.enabled)
    throw Errors.forbidden(`Archiving is disabled on this server (archiving.enabled is false): cannot ${what}`);
}

export interface StartExportRequest {
  entity: ExportEntity;
  /** The user ID or server name, as the manifest's entity_id. */
  entityId: string;
  /** The homeserver the request came for. */
  host: string;
  archiving: ArchivingSection;
  datastoreIds: string[];
  s3Urls: boolean;
}

export async function startExport(
  deps: ArchiveServiceDeps,
  r: StartExportRequest,
): Promise<{ export_id: string; task_id: number }> {
  if (!deps.datastores.pick('archives', r.datastoreIds))
    throw Errors.unavailable(`No datastore accepts archives for ${r.host}: add 'archives' to a datastore's forKinds`);
  const exportId = newArchiveId();
  await insertExport(deps.db, { exportId, entity: r.entityId, origin: r.host, createdTs: Date.now() });
  const params: ExportDataParams = {
    export_id: exportId,
    entity: r.entity,
    entity_id: r.entityId,
    part_bytes: r.archiving.targetBytesPerPart,
    datastore_ids: r.datastoreIds,
    s3_urls: r.s3Urls,
  };
  const taskId = await deps.tasks.enqueue(EXPORT_DATA, { ...params });
  await setExportTask(deps.db, exportId, taskId);
  return { export_id: exportId, task_id: taskId };
}

async function findExport(deps: ArchiveServiceDeps, exportId: string): Promise<ExportRow> {
  const row = ID_SHAPE.test(exportId) ? await getExport(deps.db, exportId) : null;
  if (!row) throw Errors.notFound('No export with this ID');
  return row;
}

export interface ExportMetadata {
  entity: string;
  parts: { index: number; size: number; name: string }[];
  /** Not MMR: false while the task still writes parts (those listed are complete). */
  finished: boolean;
  /** Not MMR: why the export failed, else null. */
  error: string | null;
}

/** MMR's metadata (`{entity, parts}`), plus whether the export is complete. */
export async function exportMetadata(deps: ArchiveServiceDeps, exportId: string): Promise<ExportMetadata> {
  const row = await findExport(deps, exportId);
  const parts = await exportParts(deps.db, row.exportId);
  return {
    entity: row.entity,
    parts: parts.map((p) => ({ index: p.index, size: p.sizeBytes, name: p.fileName })),
    finished: row.finishedTs !== null,
    error: row.error,
  };
}

export async function exportView(deps: ArchiveServiceDeps, exportId: string): Promise<string> {
  return exportViewPage(await exportMetadata(deps, exportId));
}

/** One part's bytes, for a download. */
export async function exportPartBody(
  deps: ArchiveServiceDeps,
  exportId: string,
  index: number,
): Promise<{ part: ExportPartRow; media: MediaBody }> {
  const row = await findExport(deps, exportId);
  const part = await exportPart(deps.db, row.exportId, index);
  if (!part) throw Errors.notFound(`Export has no part ${index}`);
  const ds = deps.datastores.get(part.datastoreId);
  if (!ds) throw Errors.unknown('The export part is stored in a datastore that is not configured');
  const media: MediaBody = {
    size: part.sizeBytes,
    etag: part.sha256,
    openStream: (start, end) => ds.openStream(part.location, { start, end }),
  };
  return { part, media };
}

/** Deletes the parts' objects and the rows; a task still writing finds its export gone at its next part. */
export async function deleteExport(deps: ArchiveServiceDeps, exportId: string): Promise<void> {
  if (!ID_SHAPE.test(exportId)) throw Errors.notFound('No export with this ID');
  const parts = await deps.db.tx((q) => deleteExportRows(q, exportId));
  if (!parts) throw Errors.notFound('No export with this ID');
  await dropPartObjects(deps.db, deps.datastores, parts);
}
