import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Db } from '../db/driver.js';
import { deleteExpiredReservations } from '../db/reservations.js';
import { purgePreviews } from '../db/url-previews.js';
import type { TaskRunner } from '../tasks/runner.js';
import { scheduleRecurring } from '../tasks/recurring.js';
import { ORPHAN_BLOBS } from '../tasks/orphan-blobs.js';

// Start-up step 6, housekeeping: background tasks (resumed after a crash), the fleet-wide
// orphan-blob collection, and the sweeps that keep small tables small.

export interface Housekeeping {
  /** The periodic sweeps: stopped when shutdown begins. */
  stopSweeps(): void;
  /** The orphan collection: stopped once requests are done, before the task runner. */
  stopCollection(): Promise<void>;
}

export function startHousekeeping(config: () => LoadedConfig, log: Logger, db: Db, tasks: TaskRunner): Housekeeping {
  // Resumes tasks a stopped or crashed instance left unfinished, then polls for new ones.
  tasks.start();
  // Blobs a crash left without a row: one instance of the fleet per period collects them.
  const orphanCollection = scheduleRecurring(db, tasks, log, ORPHAN_BLOBS, () => ({
    intervalMs: config().global.orphanBlobs.intervalSeconds * 1000,
    params: { min_age_seconds: config().global.orphanBlobs.minAgeSeconds },
  }));
  // Expired async-upload reservations are swept so the table stays small.
  const sweeper = setInterval(
    () => {
      deleteExpiredReservations(db, Date.now()).catch((e) =>
        log.warn('reservation sweep failed', { error: e as Error }),
      );
    },
    10 * 60 * 1000,
  );
  sweeper.unref();
  // Cached previews expire after urlPreviews.expireAfterDays (0 keeps them). Running on every
  // instance is harmless: the delete is idempotent.
  const previewPurge = setInterval(
    () => {
      const days = config().global.urlPreviews.expireAfterDays;
      if (days <= 0) return;
      purgePreviews(db, Date.now() - days * 86_400_000)
        .then((n) => n && log.info('purged expired URL previews', { rows: n }))
        .catch((e) => log.warn('URL preview purge failed', { error: e as Error }));
    },
    60 * 60 * 1000,
  );
  previewPurge.unref();
  return {
    stopSweeps() {
      clearInterval(sweeper);
      clearInterval(previewPurge);
    },
    stopCollection: () => orphanCollection.stop(),
  };
}
