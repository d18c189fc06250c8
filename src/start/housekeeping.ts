import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Db } from '../db/driver.js';
import type { TaskRunner } from '../tasks/runner.js';
import { scheduleRecurring } from '../tasks/recurring.js';
import { ORPHAN_BLOBS } from '../tasks/orphan-blobs.js';
import { MEDIA_EXPIRY } from '../tasks/expiry.js';

// Start-up step 6, housekeeping: background tasks (resumed after a crash), and the recurring
// ones that one instance of the fleet runs per period: the orphan-blob collection, and expiry
// (old remote media, thumbnails and previews; expired reservations, the invalidation log and
// blobs an interrupted purge left, swept once per fleet instead of on every instance).

export interface Housekeeping {
  /** The recurring schedules: stopped once requests are done, before the task runner. */
  stopSchedules(): Promise<void>;
}

export function startHousekeeping(config: () => LoadedConfig, log: Logger, db: Db, tasks: TaskRunner): Housekeeping {
  // Resumes tasks a stopped or crashed instance left unfinished, then polls for new ones.
  tasks.start();
  // Blobs a crash left without a row.
  const orphanCollection = scheduleRecurring(db, tasks, log, ORPHAN_BLOBS, () => ({
    intervalMs: config().global.orphanBlobs.intervalSeconds * 1000,
    params: { min_age_seconds: config().global.orphanBlobs.minAgeSeconds },
  }));
  // MMR's hourly expiry, each run up to 15 minutes late at random (expiry.* in the config).
  const expiry = scheduleRecurring(db, tasks, log, MEDIA_EXPIRY, () => ({
    intervalMs: config().global.expiry.intervalSeconds * 1000,
    jitterMs: config().global.expiry.jitterSeconds * 1000,
    params: {},
  }));
  return {
    async stopSchedules() {
      await Promise.all([orphanCollection.stop(), expiry.stop()]);
    },
  };
}
