import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { openDatabase } from '../db/open.js';
import { migrate } from '../db/migrate.js';
import type { Db } from '../db/driver.js';
import { timedDb } from '../db/timed.js';
import { bytesPerDatastore } from '../db/media.js';
import { DatastoreRegistry } from '../datastores/registry.js';
import { UploadSinkPool } from '../pools/upload-sink.js';
import { MediaRowCache } from '../cache/media-rows.js';
import { BlobCache } from '../cache/blob-cache.js';
import { UploadWaiters } from '../cache/upload-waiters.js';
import { createRedisServices, type RedisServices } from '../redis/services.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import { countDatastoreBytes } from '../metrics/datastore-bytes.js';

// Start-up step 1, storage: the database (migrated), the datastores (staging leftovers of an
// earlier run swept), the caches in front of them, and Redis.

export interface Storage {
  db: Db;
  datastores: DatastoreRegistry;
  sinks: UploadSinkPool;
  mediaRows: MediaRowCache;
  /** Hot blob contents by sha256 (downloads.cache). */
  blobCache: BlobCache;
  waiters: UploadWaiters;
  /** The Redis ring, media cache and upload notices (no-ops unless redis.enabled). */
  redis: RedisServices;
  close(): Promise<void>;
}

/** Every datastore any homeserver may use: the global list plus per-domain ones. */
export function allDatastores(cfg: LoadedConfig) {
  const byId = new Map(cfg.global.datastores.map((d) => [d.id, d]));
  for (const d of cfg.domains.values()) for (const ds of d.datastores) if (!byId.has(ds.id)) byId.set(ds.id, ds);
  return [...byId.values()];
}

export async function startStorage(
  config: () => LoadedConfig,
  log: Logger,
  metrics: MediaMetrics,
  runMigrations: boolean,
): Promise<Storage> {
  const g = config().global;
  const db: Db = timedDb(await openDatabase(g, log), metrics);
  const sinks = new UploadSinkPool();
  const waiters = new UploadWaiters();
  const redis = createRedisServices(() => config().global.redis, waiters, log);
  const close = async () => {
    redis.close();
    await sinks.close().catch(() => undefined);
    await db.close().catch(() => undefined);
  };
  try {
    if (runMigrations) await migrate(db, log);
    const datastores = new DatastoreRegistry(`m${process.env.MACHINE_ID ?? '0'}`, sinks, (ds) =>
      countDatastoreBytes(ds, metrics),
    );
    await datastores.sync(allDatastores(config()));
    datastores.setTally(await bytesPerDatastore(db));
    for (const ds of datastores.all()) {
      try {
        const swept = await ds.sweepStaging();
        if (swept) log.info('removed staging leftovers of an earlier run', { datastore: ds.id, files: swept });
      } catch (e) {
        // An unreachable bucket must not keep the other datastores (and downloads) from serving.
        log.warn('could not sweep staging leftovers; will try again at the next start', {
          datastore: ds.id,
          error: e as Error,
        });
      }
    }
    return {
      db,
      datastores,
      sinks,
      waiters,
      redis,
      mediaRows: new MediaRowCache(),
      // Sized once at start: resizing a live cache is not worth its edge cases (restart to change).
      blobCache: new BlobCache(g.downloads.cache),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
