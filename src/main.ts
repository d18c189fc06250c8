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

export interface StartOptions {
  config: LoadedConfig;
  /** File or directory to watch for live reloads; none for embedded defaults and tests. */
  configPath?: string;
  log?: Logger;
  /** Overrides repo.port (tests use 0 for an ephemeral port). */
  port?: number;
  runMigrations?: boolean;
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
}

// Composition root: the start-up steps in order (storage, images, other servers, previews,
// what handlers get, housekeeping, http), each in src/start/; shutdown runs in reverse.
export async function startMediaRepo(opts: StartOptions): Promise<RunningRepo> {
  let loaded = opts.config;
  const config = () => loaded;
  const log = opts.log ?? loggerFromConfig(loaded.global);
  // The registry exists even with metrics.enabled false: counting costs little, and the
  // pipelines then need no "is it on" checks. Only the listener depends on the setting.
  const registry = createRegistry();
  const metrics = createMediaMetrics(registry);
  metrics.setLocalNames(loaded.domains.keys());

  const storage = await startStorage(config, log, metrics, opts.runMigrations !== false);
  let images: Images | undefined;
  try {
    images = await startImages(config, log, metrics, storage);
    const remote = startRemote(config, log);
    const previews = startPreviews(config, log, metrics, storage, images.thumbnails);
    watchPools(metrics, images.thumbnails, previews.pool, previews.gate);
    watchCaches(metrics, storage.blobCache, storage.redis.ring);
    // Quarantine and purge make every cache here forget at once, and other instances soon after.
    // Made before the task runner: the expiry task purges too.
    const invalidator = new CacheInvalidator(
      {
        mediaRows: storage.mediaRows,
        thumbnailRows: images.thumbnailRows,
        blobCache: storage.blobCache,
        redis: storage.redis,
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
    });
    const state = { shuttingDown: false };
    const svc = handlerServices({ config, log, metrics, storage, images, remote, previews, tasks, state, invalidator });
    const { close: _s, ...stores } = storage;
    const { close: _i, thumbnailDeps: _t, ...imageParts } = images;
    const wiring: Wiring = { ...stores, ...imageParts, ...remote, config, log, metrics, tasks, state, invalidator };

    const { http, metricsServer } = await startHttp(config, log, svc, opts.port, { set: metrics, registry });
    const housekeeping = startHousekeeping(config, log, storage.db, tasks);
    log.info('media-repo listening', {
      address: loaded.global.repo.bindAddress,
      port: http.port,
      database: storage.db.kind,
      homeservers: [...loaded.domains.keys()].join(', '),
    });

    const watcher = opts.configPath
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
        for (const w of next.warnings ?? []) log.warn('config warning', { warning: w });
        log.info('config reloaded', { files: next.files.length, homeservers: [...next.domains.keys()].join(', ') });
        if (restartKeys.length)
          log.warn('some changed keys only apply after a restart', { keys: restartKeys.join(', ') });
      } catch (e) {
        log.error('config reload rejected; keeping the previous config', { error: e as Error });
      }
    }

    let stopping: Promise<void> | undefined;
    const imagesStarted = images;
    return {
      port: http.port,
      metricsPort: metricsServer?.port ?? null,
      services: wiring,
      request: http.request,
      reload: () => watcher?.reloadNow() ?? Promise.resolve(),
      stop(limits = {}) {
        const given = typeof limits === 'number' ? { drainMs: limits } : limits;
        // Idempotent: a second call (another signal, a test teardown) waits for the first.
        stopping ??= (async () => {
          const r = loaded.global.repo;
          const graceMs = given.graceMs ?? r.shutdownGraceSeconds * 1000;
          const drainMs = given.drainMs ?? r.shutdownDrainSeconds * 1000;
          // Step 1: grace. /readyz answers 503 while the listener stays open, so a load
          // balancer's next probes see it and it moves traffic away before connects fail.
          state.shuttingDown = true;
          watcher?.close();
          if (graceMs > 0) {
            log.info('shutdown: grace period, /readyz answers 503', { graceSeconds: graceMs / 1000 });
            await sleep(graceMs);
          }
          // Step 2: drain. New connections are refused; requests in flight get drainMs.
          http.stopListening();
          await metricsServer?.close();
          log.info('shutdown: stopped accepting connections, draining requests', {
            inFlight: http.inFlight(),
            drainSeconds: drainMs / 1000,
          });
          const deadline = Date.now() + drainMs;
          while (http.inFlight() > 0 && Date.now() < deadline) await sleep(20);
          // Step 3: what still runs is cut off (each one logged) and everything else closes.
          http.closeAll();
          await housekeeping.stopSchedules();
          await tasks.stop();
          await invalidator.stop();
          await imagesStarted.close();
          await previews.close();
          await storage.close();
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
