import type { LoadedConfig } from './config/schema.js';
import type { Logger } from './logging/logger.js';
import { loggerFromConfig } from './logging/from-config.js';
import { openDatabase } from './db/open.js';
import { migrate } from './db/migrate.js';
import type { Db } from './db/driver.js';
import type { Thumbnail } from './pipelines/thumbnail.js';
import { FreshThumbnails } from './cache/fresh-thumbnails.js';
import { FederationClient } from './matrix/federation-client.js';
import { createServerKeyFetcher } from './matrix/server-keys.js';
import { RemoteFetchState } from './cache/remote-state.js';
import type { MediaRow } from './db/media.js';
import { bytesPerDatastore } from './db/media.js';
import { deleteExpiredReservations } from './db/reservations.js';
import { DatastoreRegistry } from './datastores/registry.js';
import { HomeserverClient } from './matrix/homeserver.js';
import { TokenCache } from './cache/tokens.js';
import { MediaRowCache } from './cache/media-rows.js';
import { BlobCache } from './cache/blob-cache.js';
import { UploadWaiters } from './cache/upload-waiters.js';
import { createDispatcher } from './api/dispatch.js';
import { ROUTES } from './api/routes.js';
import type { Services } from './api/services.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { watchConfig } from './config/watch.js';
import { UploadSinkPool } from './pools/upload-sink.js';
import { ThumbnailPools } from './pools/thumbnails.js';
import { svgConfigured } from './pools/svg-loader.js';
import { PreviewPool } from './pools/previews.js';
import { createRegistry } from './metrics/registry.js';
import { startMetricsServer, type MetricsServer } from './metrics/server.js';
import { createMediaMetrics } from './metrics/media-metrics.js';
import { observeHttp } from './metrics/http-metrics.js';
import { watchPools } from './metrics/pool-gauges.js';
import { watchCaches } from './metrics/cache-metrics.js';
import { countDatastoreBytes } from './metrics/datastore-bytes.js';
import { timedDb } from './db/timed.js';
import { Admission } from './pools/admission.js';
import { PreviewResults } from './cache/preview-results.js';
import { providersLoader } from './preview/providers-loader.js';
import { poolIdentify } from './preview/identify.js';
import { purgePreviews } from './db/url-previews.js';
import type { StoredPreview } from './db/url-previews.js';
import { libuvThreadsFor, poolThreads } from './pools/thumbnail-threads.cjs';
import { ThumbnailRowCache } from './cache/thumbnail-rows.js';
import { SingleFlight } from './cache/singleflight.js';
import { Pregenerator } from './pipelines/thumbnail-pregenerate.js';
import { createRedisServices } from './redis/services.js';
import { createTaskRunner } from './tasks/create.js';
import { scheduleRecurring } from './tasks/recurring.js';
import { ORPHAN_BLOBS } from './tasks/orphan-blobs.js';

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

export interface RunningRepo {
  port: number;
  /** The metrics listener's port, when metrics.enabled. */
  metricsPort: number | null;
  services: Services;
  /** Re-reads the config file (SIGHUP); a no-op without a config path. */
  reload(): Promise<void>;
  /** Grace (readyz 503, still accepting), drain (listener closed), cut-off, then close. */
  stop(limits?: StopLimits): Promise<void>;
}

/** Every datastore any homeserver may use: the global list plus per-domain ones. */
function allDatastores(cfg: LoadedConfig) {
  const byId = new Map(cfg.global.datastores.map((d) => [d.id, d]));
  for (const d of cfg.domains.values()) for (const ds of d.datastores) if (!byId.has(ds.id)) byId.set(ds.id, ds);
  return [...byId.values()];
}

// Composition root: config → db → datastores → caches → http. Shutdown runs in reverse.
export async function startMediaRepo(opts: StartOptions): Promise<RunningRepo> {
  let loaded = opts.config;
  const g = loaded.global;
  const log = opts.log ?? loggerFromConfig(g);
  // The registry exists even with metrics.enabled false: counting costs little, and the
  // pipelines then need no "is it on" checks. Only the listener depends on the setting.
  const registry = createRegistry();
  const metricsSet = createMediaMetrics(registry);
  metricsSet.setLocalNames(loaded.domains.keys());
  const db: Db = timedDb(await openDatabase(g, log), metricsSet);
  const sinks = new UploadSinkPool();
  const threads = poolThreads(g.thumbnails.numWorkers);
  const pools = new ThumbnailPools(threads, g.thumbnails.maxQueue, { svgLoader: () => svgConfigured(loaded) });
  const waiters = new UploadWaiters();
  const redis = createRedisServices(() => loaded.global.redis, waiters, log);
  try {
    const vips = await pools.probe();
    const uv = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    const wantUv = libuvThreadsFor(threads);
    log.info('image pools ready', { vips, static: threads.static, animated: threads.animated, blurhash: threads.blurhash, libuvThreads: uv });
    if (uv < wantUv) {
      log.warn('libuv thread pool is smaller than the image pools need; start through the media-repo launcher or set UV_THREADPOOL_SIZE', { have: uv, want: wantUv });
    }
    if (opts.runMigrations !== false) await migrate(db, log);
    const datastores = new DatastoreRegistry(`m${process.env.MACHINE_ID ?? '0'}`, sinks, (ds) => countDatastoreBytes(ds, metricsSet));
    await datastores.sync(allDatastores(loaded));
    datastores.setTally(await bytesPerDatastore(db));
    for (const ds of datastores.all()) {
      try {
        const swept = await ds.sweepStaging();
        if (swept) log.info('removed staging leftovers of an earlier run', { datastore: ds.id, files: swept });
      } catch (e) {
        // An unreachable bucket must not keep the other datastores (and downloads) from serving.
        log.warn('could not sweep staging leftovers; will try again at the next start', { datastore: ds.id, error: e as Error });
      }
    }
    const tokens = new TokenCache();
    tokens.configure(g.accessTokens.maxCacheTimeSeconds);
    const freshThumbnails = new FreshThumbnails();
    const thumbnailDeps = {
      db, datastores, log, metrics: metricsSet, freshThumbnails, redis, thumbnails: pools, thumbnailRows: new ThumbnailRowCache(), thumbnailFlights: new SingleFlight<Thumbnail[]>(),
    };
    const pregenerator = new Pregenerator(thumbnailDeps, log);
    const federation = new FederationClient(() => loaded.global);
    const serverKeys = createServerKeyFetcher({ fetchKeys: (name) => federation.serverKeys(name), log });
    for (const d of loaded.domains.values()) {
      if (!d.homeserver.signingKeyPath) {
        log.warn('no signingKeyPath for this homeserver: remote media is fetched over the legacy unauthenticated endpoint only, which servers that froze their media refuse', { homeserver: d.homeserver.name });
      }
    }
    const previewPool = new PreviewPool(g.urlPreviews.numWorkers);
    // numWorkers previews in flight, each holding at most one page; a bounded line behind.
    const previewGate = new Admission(g.urlPreviews.numWorkers, g.urlPreviews.numWorkers * 16, 'URL preview');
    watchPools(metricsSet, pools, previewPool, previewGate);
    const providers = providersLoader(() => loaded.global.urlPreviews, log);
    providers(); // a broken providers file stops the start, not the first preview
    const mediaRows = new MediaRowCache();
    const tasks = createTaskRunner({ db, datastores, mediaRows, thumbnailRows: thumbnailDeps.thumbnailRows, log, metrics: metricsSet });
    const svc: Services = {
      ...thumbnailDeps,
      previews: {
        pool: previewPool,
        gate: previewGate,
        metrics: metricsSet,
        flights: new SingleFlight<StoredPreview>(),
        results: new PreviewResults(),
        providers,
        identifyImage: poolIdentify(pools, () => loaded.global.thumbnails),
      },
      config: () => loaded,
      tokens, pregenerator, federation, serverKeys, tasks,
      remoteFlights: new SingleFlight<MediaRow>(),
      remoteState: new RemoteFetchState(),
      homeserver: new HomeserverClient(),
      mediaRows,
      // Sized once at start: resizing a live cache is not worth its edge cases (restart to change).
      blobCache: new BlobCache(g.downloads.cache),
      waiters,
      state: { shuttingDown: false },
    };
    watchCaches(metricsSet, svc.blobCache, redis.ring);
    const dispatcher = createDispatcher(svc, ROUTES);
    const http: HttpServer = await startHttpServer({
      bindAddress: g.repo.bindAddress, port: opts.port ?? g.repo.port, log,
      wantsBody: dispatcher.wantsBody, dispatch: dispatcher.dispatch, observe: observeHttp(metricsSet),
    });
    let metrics: MetricsServer | null = null;
    if (g.metrics.enabled) {
      metrics = await startMetricsServer(registry, g.metrics.bindAddress, g.metrics.port);
      log.info('metrics listening', { address: g.metrics.bindAddress, port: metrics.port });
    }
    // Resumes tasks a stopped or crashed instance left unfinished, then polls for new ones.
    tasks.start();
    // Blobs a crash left without a row: one instance of the fleet per period collects them.
    const orphanCollection = scheduleRecurring(db, tasks, log, ORPHAN_BLOBS, () => ({
      intervalMs: loaded.global.orphanBlobs.intervalSeconds * 1000,
      params: { min_age_seconds: loaded.global.orphanBlobs.minAgeSeconds },
    }));
    log.info('media-repo listening', { address: g.repo.bindAddress, port: http.port, database: db.kind, homeservers: [...loaded.domains.keys()].join(', ') });

    const watcher = opts.configPath
      ? watchConfig(opts.configPath, () => loaded, (next, restartKeys) => {
        void applyReload(next, restartKeys);
      }, log)
      : null;
    async function applyReload(next: LoadedConfig, restartKeys: string[]): Promise<void> {
      try {
        await datastores.sync(allDatastores(next));
        tokens.configure(next.global.accessTokens.maxCacheTimeSeconds);
        redis.ring.configure(next.global.redis);
        log.setOptions({ level: next.global.repo.logLevel, json: next.global.repo.jsonLogs });
        loaded = next;
        metricsSet.setLocalNames(next.domains.keys());
        for (const w of next.warnings ?? []) log.warn('config warning', { warning: w });
        log.info('config reloaded', { files: next.files.length, homeservers: [...next.domains.keys()].join(', ') });
        if (restartKeys.length) log.warn('some changed keys only apply after a restart', { keys: restartKeys.join(', ') });
      } catch (e) {
        log.error('config reload rejected; keeping the previous config', { error: e as Error });
      }
    }

    // Expired async-upload reservations are swept so the table stays small.
    const sweeper = setInterval(() => {
      deleteExpiredReservations(db, Date.now()).catch((e) => log.warn('reservation sweep failed', { error: e as Error }));
    }, 10 * 60 * 1000);
    sweeper.unref();
    // Cached previews expire after urlPreviews.expireAfterDays (0 keeps them). Running on every
    // instance is harmless: the delete is idempotent.
    const previewPurge = setInterval(() => {
      const days = loaded.global.urlPreviews.expireAfterDays;
      if (days <= 0) return;
      purgePreviews(db, Date.now() - days * 86_400_000)
        .then((n) => n && log.info('purged expired URL previews', { rows: n }))
        .catch((e) => log.warn('URL preview purge failed', { error: e as Error }));
    }, 60 * 60 * 1000);
    previewPurge.unref();

    let stopping: Promise<void> | undefined;
    return {
      port: http.port,
      metricsPort: metrics?.port ?? null,
      services: svc,
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
          svc.state.shuttingDown = true;
          watcher?.close();
          clearInterval(sweeper);
          clearInterval(previewPurge);
          if (graceMs > 0) {
            log.info('shutdown: grace period, /readyz answers 503', { graceSeconds: graceMs / 1000 });
            await sleep(graceMs);
          }
          // Step 2: drain. New connections are refused; requests in flight get drainMs.
          http.stopListening();
          await metrics?.close();
          log.info('shutdown: stopped accepting connections, draining requests', { inFlight: http.inFlight(), drainSeconds: drainMs / 1000 });
          const deadline = Date.now() + drainMs;
          while (http.inFlight() > 0 && Date.now() < deadline) await sleep(20);
          // Step 3: what still runs is cut off (each one logged) and everything else closes.
          http.closeAll();
          await orphanCollection.stop();
          await tasks.stop();
          pregenerator.stop();
          await freshThumbnails.drain();
          await pools.close();
          await previewPool.close();
          await sinks.close();
          redis.close();
          await db.close();
        })();
        return stopping;
      },
    };
  } catch (e) {
    redis.close();
    await pools.close().catch(() => undefined);
    await sinks.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw e;
  }
}
