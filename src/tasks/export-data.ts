import type { Db } from '../db/driver.js';
import type { ExportEntity } from '../db/archive-export.js';
import { clearExportParts, finishExport, getExport } from '../db/exports.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { writeExport } from '../archive/export-archive.js';
import { exportItems } from '../archive/export-items.js';
import { DatastorePartSink, ExportDeletedError } from '../archive/datastore-sink.js';
import { dropPartObjects } from '../archive/stored-parts.js';
import type { TaskContext, TaskHandler } from './runner.js';

// MMR's `export_data` task: one entity's media as archive parts in an archives datastore.
// Not resumable part by part (a part is one gzip stream): a task that restarts after a crash
// or a takeover drops the parts the earlier run committed and starts over. Memory is one
// batch of rows plus the stream buffers; the manifest is spooled to disk by writeExport.

export const EXPORT_DATA = 'export_data';

export interface ExportDataParams {
  export_id: string;
  entity: ExportEntity;
  entity_id: string;
  part_bytes: number;
  /** The archives datastores the homeserver may use (per-domain datastores). */
  datastore_ids: string[];
  s3_urls: boolean;
}

export interface ExportDataDeps {
  db: Db;
  datastores: DatastoreRegistry;
}

export function exportData(deps: ExportDataDeps): TaskHandler {
  return async (ctx: TaskContext) => {
    const p = ctx.task.params as unknown as ExportDataParams;
    if (!(await getExport(deps.db, p.export_id))) return; // deleted before it ran
    // A restart: whatever an earlier run committed is dropped; the export is redone whole.
    await dropPartObjects(deps.db, deps.datastores, await clearExportParts(deps.db, p.export_id));
    const ds = deps.datastores.pick('archives', p.datastore_ids);
    try {
      if (!ds) throw new Error('no datastore accepts archives for this homeserver');
      const progress = { media: 0, bytes: 0, skipped: 0, parts: 0 };
      const { db, datastores } = deps;
      const items = exportItems(db, datastores, p.entity, { s3Urls: p.s3_urls, signal: ctx.signal });
      const sink = new DatastorePartSink(deps.db, ds, p.export_id, async () => {
        progress.parts++;
        await ctx.saveProgress(progress);
      });
      await writeExport(items, {
        entityId: p.entity_id,
        targetBytesPerPart: p.part_bytes,
        sink,
        onEvent(e) {
          if (e.kind === 'written') {
            progress.media++;
            progress.bytes += e.sizeBytes;
          } else if (e.kind === 'skipped') {
            progress.skipped++;
            ctx.log.warn('media left out of the export', { mxc: e.mxc, reason: e.reason });
          } else ctx.log.warn('exported bytes hash differently from the row', { mxc: e.mxc, actual: e.actual });
        },
      });
      await ctx.saveProgress(progress);
      await finishExport(deps.db, p.export_id, Date.now(), null);
    } catch (e) {
      // Interrupted (shutdown, lost claim): left unfinished for the next run. Deleted: nothing to record.
      if (ctx.signal.aborted || e instanceof ExportDeletedError) throw e;
      await finishExport(deps.db, p.export_id, Date.now(), (e as Error).message);
      throw e;
    }
  };
}
