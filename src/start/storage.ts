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
import type { AttachedSinks } from '../pools/upload-sink.js';
import type { ThreadBus } from '../threads/bus.js';
import type { Config } from '../config/schema.js';

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

/** How this thread shares the process with its other HTTP threads (repo.httpThreads > 1). */
export interface StorageShare {
  /** HTTP threads in the process, this one's number (0 = the main thread). */
  count: number;
  index: number;
  bus?: ThreadBus;
  /** An HTTP thread's: the main thread's embedded database; null with Postgres (a pool here). */
  db?: Db | null;
  /** An HTTP thread's: the process's upload sinks. */
  sinks?: AttachedSinks;
}

/**
 * database.pool.maxConnections is the process's: each thread gets an equal share, the main
 * thread the remainder too; with fewer connections than threads each still gets one.
 */
export function poolShare(pool: Config['database']['pool'], share: StorageShare): Config['database']['pool'] {
  if (share.count <= 1) return pool;
  const each = Math.max(1, Math.floor(pool.maxConnections / share.count));
  const rest = Math.max(0, pool.maxConnections - each * share.count);
  const idleEach = Math.floor(pool.maxIdleConnections / share.count);
  return {
    maxConnections: share.index === 0 ? each + rest : each,
    maxIdleConnections: share.index === 0 ? pool.maxIdleConnections - idleEach * (share.count - 1) : idleEach,
  };
}

export async function startStorage(
  config: () => LoadedConfig,
  log: Logger,
  metrics: MediaMetrics,
  runMigrations: boolean,
  share: StorageShare = { count: 1, index: 0 },
): Promise<Storage> {
  const g = config().global;
  const opened =
    share.db ??
    (await openDatabase({ ...g, database: { ...g.database, pool: poolShare(g.database.pool, share) } }, log));
  const db: Db = timedDb(opened, metrics);
  const sinks = new UploadSinkPool(share.sinks);
  const waiters = new UploadWaiters();
  const redis = createRedisServices(() => config().global.redis, waiters, log, share.bus);
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
    // Only the main thread sweeps: the other threads start while its uploads may be staging.
    for (const ds of share.index === 0 ? datastores.all() : []) {
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
      // Each HTTP thread holds its share of the byte bound, so the process never holds more
      // (src/threads/README.md says why a share rather than one shared cache).
      blobCache: new BlobCache({
        ...g.downloads.cache,
        maxSizeBytes: Math.floor(g.downloads.cache.maxSizeBytes / share.count),
      }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
