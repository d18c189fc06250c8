import type { Db } from '../db/driver.js';
import { deleteImportRows, getImport, importParts } from '../db/exports.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { ArchiveReader } from '../archive/read-archive.js';
import { importArchive, type ImportCounts } from '../archive/import-archive.js';
import { dropPartObjects } from '../archive/stored-parts.js';
import type { TaskContext, TaskHandler } from './runner.js';

// MMR's `import_data` task: the parts uploaded through the admin API, read back from the
// archives datastore and imported by the archive library (existing mxcs skipped, uploaders on
// another server refused, hashes checked, quotas not applied). The task is created when the
// import starts but is only due once the import is closed (or its wait runs out, when the
// uploaded parts are discarded). Importing is idempotent, so a restarted task simply runs
// again; the staged parts are deleted once it is done.

export const IMPORT_DATA = 'import_data';

export interface ImportDataParams {
  import_id: string;
  /** Configured homeservers (lower case) when the import started: their media is local. */
  local_servers: string[];
}

export interface ImportDataDeps {
  db: Db;
  datastores: DatastoreRegistry;
}

export function importData(deps: ImportDataDeps): TaskHandler {
  return async (ctx: TaskContext) => {
    const p = ctx.task.params as unknown as ImportDataParams;
    const imp = await getImport(deps.db, p.import_id);
    if (!imp) return;
    const discard = async () => dropPartObjects(deps.db, deps.datastores, await deleteImportRows(deps.db, p.import_id));
    if (imp.closedTs === null) {
      await discard();
      throw new Error('the import was not closed in time; its uploaded parts were discarded');
    }
    const parts = await importParts(deps.db, p.import_id);
    const progress: ImportCounts & { parts: number } = {
      parts: parts.length,
      imported: 0,
      existing: 0,
      refused: 0,
      mismatched: 0,
      missing: 0,
    };
    try {
      const reader = await ArchiveReader.open(
        parts.map((part) => ({
          name: `part ${part.index}`,
          open: () => {
            const ds = deps.datastores.get(part.datastoreId);
            if (!ds) throw new Error(`datastore '${part.datastoreId}' holding part ${part.index} is not configured`);
            return ds.openStream(part.location);
          },
        })),
      );
      let n = 0;
      const counts = await importArchive(reader, deps, {
        localServers: new Set(p.local_servers),
        signal: ctx.signal,
        onEvent(e) {
          if (e.kind === 'refused') ctx.log.warn('archive entry refused', { mxc: e.mxc, reason: e.reason });
          else if (e.kind === 'mismatch') ctx.log.warn('archive entry does not match its manifest', { mxc: e.mxc });
          else if (e.kind === 'missing')
            ctx.log.warn('archive entry missing from the parts', {
              mxc: e.mxc,
              ...(e.detail ? { detail: e.detail } : {}),
            });
          else if (++n % 100 === 0) ctx.log.info('archive import progress', { done: n });
        },
      });
      ctx.signal.throwIfAborted();
      Object.assign(progress, counts);
      await ctx.saveProgress({ ...progress });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      // A broken archive will not mend itself: its parts go, the task records why.
      await discard();
      throw e;
    }
    await discard();
  };
}
