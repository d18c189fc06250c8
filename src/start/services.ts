import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import type { Services } from '../api/services.js';
import type { TaskRunner } from '../tasks/runner.js';
import type { Storage } from './storage.js';
import type { Images } from './images.js';
import type { Remote } from './remote.js';
import type { Previews } from './previews.js';
import type { CacheInvalidator } from '../cache/invalidation.js';
import { RateLimiter } from '../ratelimit/limiter.js';
import type { ThreadBuckets } from '../threads/shared-buckets.js';

// Start-up step 5: what each pipeline is given, out of the parts the steps before started.
// Each gets the few stores it uses; handlers see only these groups, never a store.

export interface Parts {
  config(): LoadedConfig;
  log: Logger;
  metrics: MediaMetrics;
  storage: Storage;
  images: Images;
  remote: Remote;
  previews: Previews;
  tasks: TaskRunner;
  state: { shuttingDown: boolean };
  invalidator: CacheInvalidator;
  /** The rate-limit buckets the process's HTTP threads share, when it has several. */
  threadBuckets?: ThreadBuckets;
}

export function handlerServices(p: Parts): Services {
  const { config, log, metrics, storage, images, remote } = p;
  const { db, datastores, mediaRows, waiters, redis, blobCache } = storage;
  const remoteDeps = {
    config,
    log,
    metrics,
    db,
    datastores,
    mediaRows,
    redis,
    federation: remote.federation,
    remoteFlights: remote.remoteFlights,
    remoteState: remote.remoteState,
    threadLocks: images.thumbnailDeps.threadLocks,
  };
  const local = { db, mediaRows, waiters };
  return {
    config,
    log,
    metrics,
    state: p.state,
    homeserver: remote.homeserver,
    auth: {
      config,
      tokens: remote.tokens,
      adminStatus: remote.adminStatus,
      homeserver: remote.homeserver,
      serverKeys: remote.serverKeys,
    },
    roles: { config, homeserver: remote.homeserver, adminStatus: remote.adminStatus },
    download: { ...remoteDeps, ...local, blobCache },
    thumbnail: { ...images.thumbnailDeps, ...remoteDeps, ...local, blobCache },
    upload: {
      ...images.thumbnailDeps,
      config,
      mediaRows,
      waiters,
      redis,
      pregenerator: images.pregenerator,
      putsInFlight: new Set<string>(),
    },
    identicon: { thumbnails: images.thumbnails, rendered: images.identicons },
    preview: p.previews.deps,
    admin: { db, datastores, tasks: p.tasks },
    moderation: { config, db, datastores, invalidator: p.invalidator, log },
    readiness: { db, datastores },
    adminInfo: {
      config,
      db,
      datastores,
      mediaRows,
      waiters,
      thumbnails: images.thumbnails,
      federation: remote.federation,
    },
    rateLimit: rateLimiter(p),
  };
}

/** The limiter, its metrics and the scrape-time sample of its buckets. */
function rateLimiter(p: Parts): RateLimiter {
  const m = p.metrics;
  const limiter = new RateLimiter(
    () => p.config().global.rateLimit,
    p.storage.redis.ring,
    {
      rejected: (reason, action) => m.rateLimitRejections.inc({ reason, action }),
      fallback: () => m.rateLimitFallbacks.inc(),
    },
    p.threadBuckets,
  );
  m.onScrape.push(() => {
    if (!p.config().global.rateLimit.enabled) return;
    const s = limiter.sample();
    m.rateLimitClients.set(s.clients);
    m.rateLimitFill.set({ bucket: 'requests' }, s.requestsFill);
    m.rateLimitFill.set({ bucket: 'bytes' }, s.bytesFill);
  });
  return limiter;
}
