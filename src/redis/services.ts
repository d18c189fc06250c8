import type { UploadWaiters } from '../cache/upload-waiters.js';
import type { Logger } from '../logging/logger.js';
import { RedisMediaCache } from './media-cache.js';
import { RedisRing } from './ring.js';
import { announceUpload, relayUploadNotices } from './upload-notices.js';
import type { RedisSection } from '../config/schema.js';

/** What pipelines and handlers use of Redis; all of it is a no-op while redis.enabled is false. */
export interface RedisServices {
  ring: RedisRing;
  media: RedisMediaCache;
  announceUpload(key: string): void;
  close(): void;
}

export function createRedisServices(cfg: () => RedisSection, waiters: UploadWaiters, log: Logger): RedisServices {
  const ring = new RedisRing(log);
  ring.configure(cfg());
  const stopRelay = relayUploadNotices(ring, waiters);
  return {
    ring,
    media: new RedisMediaCache(ring, () => cfg().maxCacheObjectBytes),
    announceUpload: (key) => announceUpload(ring, key),
    close() {
      stopRelay();
      ring.close();
    },
  };
}
