import type { UploadWaiters } from '../cache/upload-waiters.js';
import type { Logger } from '../logging/logger.js';
import { RedisMediaCache } from './media-cache.js';
import { RedisRing } from './ring.js';
import { announceUpload, relayUploadNotices } from './upload-notices.js';
import type { RedisSection } from '../config/schema.js';
import type { ThreadBus } from '../threads/bus.js';

const UPLOADED = 'uploaded';

/** What pipelines and handlers use of Redis; all of it is a no-op while redis.enabled is false. */
export interface RedisServices {
  ring: RedisRing;
  media: RedisMediaCache;
  announceUpload(key: string): void;
  close(): void;
}

/** `bus`: this process's other HTTP threads, told of async uploads as other instances are. */
export function createRedisServices(
  cfg: () => RedisSection,
  waiters: UploadWaiters,
  log: Logger,
  bus?: ThreadBus,
): RedisServices {
  const ring = new RedisRing(log);
  ring.configure(cfg());
  const stopRelay = relayUploadNotices(ring, waiters);
  const stopThreads = bus?.subscribe(UPLOADED, (key) => waiters.notify(key));
  return {
    ring,
    media: new RedisMediaCache(ring, () => cfg().maxCacheObjectBytes),
    announceUpload(key) {
      bus?.publish(UPLOADED, key);
      announceUpload(ring, key);
    },
    close() {
      stopRelay();
      stopThreads?.();
      ring.close();
    },
  };
}
