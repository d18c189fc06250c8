import type { Db } from '../db/driver.js';
import type { Logger } from '../logging/logger.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { MediaRowCache } from '../cache/media-rows.js';
import type { ThumbnailRowCache } from '../cache/thumbnail-rows.js';
import { TaskRunner, type TaskHandler } from './runner.js';
import { STORAGE_MIGRATION, storageMigration } from './storage-migration.js';
import { ORPHAN_BLOBS, orphanBlobs } from './orphan-blobs.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import type { ModerationDeps } from '../pipelines/admin/moderation-deps.js';
import { MEDIA_EXPIRY, mediaExpiry } from './expiry.js';
import { EXPORT_DATA, exportData } from './export-data.js';
import { IMPORT_DATA, importData } from './import-data.js';

export interface TaskDeps {
  db: Db;
  datastores: DatastoreRegistry;
  mediaRows: MediaRowCache;
  thumbnailRows: ThumbnailRowCache;
  log: Logger;
  /** Counts what tasks did (orphan blobs removed); absent in tools and tests that need no metrics. */
  metrics?: MediaMetrics;
  /** What purges need (caches to invalidate, blobs to delete); without it there is no expiry task. */
  moderation?: ModerationDeps;
  /** See RunnerOptions.runsElsewhere (HTTP threads). */
  runsElsewhere?: () => void;
}

/** Row caches keep rows this long; another instance may serve a moved row's old location until then. */
const ROW_CACHE_TTL_MS = 60_000;

// Every task kind this build knows, wired to its dependencies.
export function createTaskRunner(deps: TaskDeps): TaskRunner {
  const handlers = new Map<string, TaskHandler>([
    [
      STORAGE_MIGRATION,
      storageMigration({
        db: deps.db,
        datastores: deps.datastores,
        forgetRows(rows) {
          for (const r of rows) if (!r.thumbnail) deps.mediaRows.delete(r.origin, r.mediaId);
          if (rows.some((r) => r.thumbnail)) deps.thumbnailRows.clear();
          // The other HTTP threads (and instances, where Redis is on) forget the old locations too.
          deps.moderation?.invalidator.announce({ media: rows.map((r) => `${r.origin}/${r.mediaId}`), hashes: [] });
        },
        // Embedded PGlite means one instance, whose own caches were just cleared: the grace only
        // covers downloads that read the row a moment before the repoint. With Postgres other
        // instances may hold the old row for a whole cache lifetime.
        deleteGraceMs: deps.db.kind === 'pglite' ? 2_000 : ROW_CACHE_TTL_MS + 5_000,
      }),
    ],
    [
      ORPHAN_BLOBS,
      orphanBlobs({
        db: deps.db,
        datastores: deps.datastores,
        countRemoved: (datastoreId) => deps.metrics?.orphanBlobsRemoved.inc({ datastore: datastoreId }),
      }),
    ],
    [EXPORT_DATA, exportData({ db: deps.db, datastores: deps.datastores })],
    [IMPORT_DATA, importData({ db: deps.db, datastores: deps.datastores })],
  ]);
  if (deps.moderation) handlers.set(MEDIA_EXPIRY, mediaExpiry(deps.moderation));
  return new TaskRunner(deps.db, deps.log.child({ component: 'tasks' }), handlers, {
    runsElsewhere: deps.runsElsewhere,
  });
}
