import type { UploadWaiters } from '../cache/upload-waiters.js';
import type { RedisRing } from './ring.js';

const CHANNEL = 'uploaded';

// An async upload that lands on one instance wakes downloads waiting for it on the others at
// once, instead of at their next 1 s database poll. A notice lost while Redis is down costs
// only that latency: the poll stays.
export function announceUpload(ring: RedisRing, key: string): void {
  ring.publish(CHANNEL, key, key);
}

/** Wakes local waiters on every notice; returns the unsubscribe. */
export function relayUploadNotices(ring: RedisRing, waiters: UploadWaiters): () => void {
  return ring.subscribe(CHANNEL, (key) => {
    ring.stats.uploadNotices++;
    waiters.notify(key);
  });
}
