import type { LoadedConfig } from './config/schema.js';
import type { Logger } from './logging/logger.js';
import { loggerFromConfig } from './logging/from-config.js';
import { watchConfig } from './config/watch.js';
import { createRegistry } from './metrics/registry.js';
import { createMediaMetrics, type MediaMetrics } from './metrics/media-metrics.js';
import { watchPools } from './metrics/pool-gauges.js';
import { watchCaches } from './metrics/cache-metrics.js';
import type { HttpServer } from './http/server.js';
import { createTaskRunner } from './tasks/create.js';
import type { TaskRunner } from './tasks/runner.js';
import { allDatastores, startStorage, type Storage } from './start/storage.js';
import { startImages, type Images } from './start/images.js';
import { startRemote, type Remote } from './start/remote.js';
import { startPreviews } from './start/previews.js';
import { handlerServices } from './start/services.js';
import { startHousekeeping } from './start/housekeeping.js';
import { startHttp } from './start/http.js';
import { CacheInvalidator } from './cache/invalidation.js';
import { randomBytes } from 'node:crypto';
import type { Db } from './db/driver.js';
import type { AttachedSinks } from './pools/upload-sink.js';
import { ThreadBus } from './threads/bus.js';
import { SharedLocks, sharedLockMemory } from './threads/shared-locks.js';
import { ThreadBuckets, sharedBucketMemory } from './threads/shared-buckets.js';
import type { PoolsOverChannel } from './threads/shared-pools.js';
import { httpThreadCount } from './pools/thumbnail-threads.cjs';
import { aggregatedMetrics, startHttpThreads, type HttpThreads } from './threads/host.js';

export interface StartOptions {
  config: LoadedConfig;
  /** File or directory to watch for live reloads; none for embedded defaults and tests. */
  configPath?: string;
  log?: Logger;
  /** Overrides repo.port (tests use 0 for an ephemeral port). */
  port?: number;
  runMigrations?: boolean;
  /** Set by src/threads/http-thread.ts only: this start is one of several HTTP threads. */
  thread?: ThreadSide;
}

/** What an HTTP thread other than the main one is given (repo.httpThreads > 1). */
export interface ThreadSide {
  index: number;
  count: number;
  bus: ThreadBus;
  locks: SharedLocks;
  /** The rate limiter's buckets, one table for the process. */
  bucketMemory: SharedArrayBuffer;
  /** The main thread's embedded database over a port; null with Postgres. */
  db: Db | null;
  sinks: AttachedSinks;
  pools: PoolsOverChannel;
  /** A task was created here: the main thread runs it. */
  wakeTasks(): void;
}

/**
 * One stop's overrides of repo.shutdownGraceSeconds and repo.shutdownDrainSeconds (a bare
 * number is the drain). The systemd unit's TimeoutStopSec and the README's docker
 * --stop-timeout sit above the defaults' sum (test/systemd-unit.test.ts checks the unit's).
 */
export type StopLimits = number | { graceMs?: number; drainMs?: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every part the start-up steps made, for tests and tools (handlers get src/api's Services). */
export type Wiring = Omit<Storage, 'close'> &
  Omit<Images, 'close' | 'thumbnailDeps'> &
  Remote & {
    config(): LoadedConfig;
    log: Logger;
    metrics: MediaMetrics;
    tasks: TaskRunner;
    state: { shuttingDown: boolean };
    invalidator: CacheInvalidator;
  };

export interface RunningRepo {
  port: number;
  /** The metrics listener's port, when metrics.enabled. */
  metricsPort: number | null;
  services: Wiring;
  /** Re-reads the config file (SIGHUP); a no-op without a config path. */
  reload(): Promise<void>;
  /** Grace (readyz 503, still accepting), drain (listener closed), cut-off, then close. */
  stop(limits?: StopLimits): Promise<void>;
  /** One request through the HTTP path without a socket (tests, tools): see http/in-process.ts. */
  request: HttpServer['request'];
  /** HTTP threads serving the port (repo.httpThreads; the main thread is one of them). */
  httpThreads: number;
  /** Resolves when an HTTP thread died: /readyz is 503 from then on and the caller should stop
   * and exit (the command line does, with status 1). Never resolves otherwise. */
  failed: Promise<Error>;
  /** For src/threads/ and tests: what the threads' host uses of a started server. */
  internal: {
    /** Applies a config the main thread loaded (an HTTP thread's reload). */
    apply(next: LoadedConfig, restartKeys: string[]): Promise<void>;
    /** This thread's registry as JSON. */
    metricsJson(): Promise<unknown[]>;
    /** Closes the listener and every connection at once (a thread that failed). */
    closeNow(): void;
    /** The other HTTP threads, on the main thread when there are some. */
    threads: HttpThreads | null;
  };
}

// Composition root: the start-up steps in order (storage, images, other servers, previews,
// what handlers get, housekeeping, http), each in src/start/; shutdown runs in reverse.
export async function startMediaRepo(opts: StartOptions): Promise<RunningRepo> {
  let loaded = opts.config;
  const config = () => loaded;
  const log = opts.log ?? loggerFromConfig(loaded.global);
  const side = opts.thread;
  const threadCount = side?.count ?? httpThreadCount(loaded.global.repo.httpThreads);
  // What the process's HTTP threads share: notices and locks (the main thread makes them).
  const bus = side?.bus ?? (threadCount > 1 ? new ThreadBus(randomBytes(8).toString('hex')) : undefined);
  const lockMemory = threadCount > 1 && !side ? sharedLockMemory() : null;
  const locks = side?.locks ?? (lockMemory ? new SharedLocks(lockMemory, 0) : undefined);
  const bucketMemory = side?.bucketMemory ?? (threadCount > 1 ? sharedBucketMemory() : null);
  // The registry exists even with metrics.enabled false: counting costs little, and the
  // pipelines then need no "is it on" checks. Only the listener depends on the setting.
  const registry = createRegistry(!side);
  const metrics = createMediaMetrics(registry);
  metrics.setLocalNames(loaded.domains.keys());

  const storage = await startStorage(config, log, metrics, opts.runMigrations !== false && !side, {
    count: threadCount,
    index: side?.index ?? 0,
    bus,
    db: side?.db,
    sinks: side?.sinks,
  });
  let images: Images | undefined;
  try {
    images = await startImages(config, log, metrics, storage, { pools: side?.pools, locks });
    const remote = startRemote(config, log, { bus, count: threadCount, main: !side });
    const previews = startPreviews(
      config,
      log,
      metrics,
      storage,
      images.thumbnails,
      side ? { parser: side.pools.previews, gate: side.pools.previewGate, locks } : { locks },
    );
    if (images.ownPools && previews.pool && previews.gate)
      watchPools(metrics, images.ownPools, previews.pool, previews.gate);
    watchCaches(metrics, storage.blobCache, storage.redis.ring);
    // Quarantine and purge make every cache here forget at once, and other instances soon after.
    // Made before the task runner: the expiry task purges too.
    const invalidator = new CacheInvalidator(
      {
        mediaRows: storage.mediaRows,
        thumbnailRows: images.thumbnailRows,
        blobCache: storage.blobCache,
        redis: storage.redis,
        bus,
      },
      storage.db,
      log,
    );
    await invalidator.start();
    const tasks = createTaskRunner({
      db: storage.db,
      datastores: storage.datastores,
      mediaRows: storage.mediaRows,
      thumbnailRows: images.thumbnailRows,
      log,
      metrics,
      moderation: { config, db: storage.db, datastores: storage.datastores, invalidator, log },
      runsElsewhere: side?.wakeTasks,
    });
    const state = { shuttingDown: false };
    const svc = handlerServices({
      config,
      log,
      metrics,
      storage,
      images,
      remote,
      previews,
      tasks,
      state,
      invalidator,
      threadBuckets: bucketMemory ? new ThreadBuckets(bucketMemory) : undefined,
    });
    const { close: _s, ...stores } = storage;
    const { close: _i, thumbnailDeps: _t, ...imageParts } = images;
    const wiring: Wiring = { ...stores, ...imageParts, ...remote, config, log, metrics, tasks, state, invalidator };

    let threads: HttpThreads | null = null;
    let reportFailure: (e: Error) => void = () => undefined;
    const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
    const { http, metricsServer } = await startHttp(
      config,
      log,
      svc,
      opts.port,
      { set: metrics, registry },
      {
        metrics: !side,
        sharedPort: !side && threadCount > 1,
        thread: { index: side?.index ?? 0, count: threadCount },
        collect: () => (threads ? aggregatedMetrics(registry, threads) : registry.metrics()),
      },
    );
    const housekeeping = side ? null : startHousekeeping(config, log, storage.db, tasks);
    const imagesStarted = images;
    const closeParts = async () => {
      await housekeeping?.stopSchedules();
      await tasks.stop();
      await invalidator.stop();
      await imagesStarted.close();
      await previews.close();
      await storage.close();
      if (!side) bus?.close();
    };
    if (!side && threadCount > 1) {
      try {
        threads = await startHttpThreads({
          count: threadCount,
          port: http.port,
          config: loaded,
          log,
          busId: bus!.id,
          lockMemory: lockMemory!,
          bucketMemory: bucketMemory!,
          db: storage.db,
          sinks: storage.sinks,
          pools: { thumbnails: images.ownPools!, previews: previews.pool!, previewGate: previews.gate! },
          wakeTasks: () => tasks.wake(),
          onFailure(e) {
            state.shuttingDown = true;
            threads?.shuttingDown();
            reportFailure(e);
          },
        });
      } catch (e) {
        http.stopListening();
        http.closeAll();
        await metricsServer?.close();
        await closeParts();
        throw e;
      }
    }
    const pool = loaded.global.database.pool;
    if (!side && threadCount > 1 && storage.db.kind !== 'pglite' && pool.maxConnections < threadCount)
      log.warn('database.pool.maxConnections is below repo.httpThreads: each thread still opens one', {
        maxConnections: pool.maxConnections,
        httpThreads: threadCount,
      });
    if (!side)
      log.info('media-repo listening', {
        address: loaded.global.repo.bindAddress,
        port: http.port,
        database: storage.db.kind,
        homeservers: [...loaded.domains.keys()].join(', '),
        httpThreads: threadCount,
      });

    const watcher =
      opts.configPath && !side
        ? watchConfig(
            opts.configPath,
            config,
            (next, restartKeys) => {
              void applyReload(next, restartKeys);
            },
            log,
          )
        : null;
    async function applyReload(next: LoadedConfig, restartKeys: string[]): Promise<void> {
      try {
        await storage.datastores.sync(allDatastores(next));
        remote.tokens.configure(next.global.accessTokens.maxCacheTimeSeconds);
        remote.adminStatus.configure(next.global.accessTokens.maxCacheTimeSeconds);
        storage.redis.ring.configure(next.global.redis);
        log.setOptions({ level: next.global.repo.logLevel, json: next.global.repo.jsonLogs });
        loaded = next;
        metrics.setLocalNames(next.domains.keys());
        // The main thread says it once for the process; every thread applies it.
        if (side) return;
        threads?.reload(next, restartKeys);
        for (const w of next.warnings ?? []) log.warn('config warning', { warning: w });
        log.info('config reloaded', { files: next.files.length, homeservers: [...next.domains.keys()].join(', ') });
        if (restartKeys.length)
          log.warn('some changed keys only apply after a restart', { keys: restartKeys.join(', ') });
      } catch (e) {
        log.error('config reload rejected; keeping the previous config', { error: e as Error });
      }
    }

    let stopping: Promise<void> | undefined;
    return {
      port: http.port,
      metricsPort: metricsServer?.port ?? null,
      services: wiring,
      request: http.request,
      httpThreads: threadCount,
      failed,
      internal: {
        apply: applyReload,
        metricsJson: () => registry.getMetricsAsJSON() as Promise<unknown[]>,
        closeNow() {
          http.stopListening();
          http.closeAll();
        },
        get threads() {
          return threads;
        },
      },
      reload: () => watcher?.reloadNow() ?? Promise.resolve(),
      stop(limits = {}) {
        const given = typeof limits === 'number' ? { drainMs: limits } : limits;
        // Idempotent: a second call (another signal, a test teardown) waits for the first.
        stopping ??= (async () => {
          const r = loaded.global.repo;
          const graceMs = given.graceMs ?? r.shutdownGraceSeconds * 1000;
          const drainMs = given.drainMs ?? r.shutdownDrainSeconds * 1000;
          // Step 1: grace. /readyz answers 503 (on every thread) while the listeners stay
          // open, so a load balancer's next probes see it and it moves traffic away before
          // connects fail.
          state.shuttingDown = true;
          threads?.shuttingDown();
          watcher?.close();
          if (graceMs > 0) {
            log.info('shutdown: grace period, /readyz answers 503', { graceSeconds: graceMs / 1000 });
            await sleep(graceMs);
          }
          // Step 2: drain. New connections are refused; requests in flight get drainMs, on
          // this thread and (at the same time) on every other HTTP thread.
          http.stopListening();
          const othersDrained = threads?.stop(drainMs);
          await metricsServer?.close();
          // Every thread says it (an HTTP thread's line carries its number).
          log.info('shutdown: stopped accepting connections, draining requests', {
            inFlight: http.inFlight(),
            drainSeconds: drainMs / 1000,
          });
          const deadline = Date.now() + drainMs;
          while (http.inFlight() > 0 && Date.now() < deadline) await sleep(20);
          // Step 3: what still runs is cut off (each one logged) and everything else closes,
          // once the other threads, which use the database, sinks and pools here, have ended.
          http.closeAll();
          await othersDrained;
          await closeParts();
        })();
        return stopping;
      },
    };
  } catch (e) {
    await images?.close().catch(() => undefined);
    await storage.close();
    throw e;
  }
}
