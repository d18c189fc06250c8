import { Counter, Gauge } from 'prom-client';
import type { BlobCache } from '../cache/blob-cache.js';
import type { RedisRing } from '../redis/ring.js';
import type { MediaMetrics } from './media-metrics.js';

// The blob cache and the Redis ring count in plain numbers (no prom-client on the download
// path); at scrape time their totals are carried into the Prometheus counters as deltas.
// media_cache_* are MMR's names, with cache="media" (MMR's value, the in-process blob cache) and
// cache="redis"; media_redis_* are ours.

type Labels = Record<string, string>;

/** Keeps a prom-client counter equal to a number that only grows (it follows a reset too). */
function mirror(counter: Counter<string>, labels: Labels, read: () => number): () => void {
  let last = 0;
  counter.inc(labels, 0); // present at 0 from the first scrape, so rate() has a start
  return () => {
    const now = read();
    const delta = now >= last ? now - last : now;
    if (delta > 0) counter.inc(labels, delta);
    last = now;
  };
}

export function watchCaches(m: MediaMetrics, blob: BlobCache, ring: RedisRing): void {
  const registers = [m.registry];
  const b = blob.stats;
  const r = ring.stats;
  const syncs = m.counterSyncs;
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers, collect: m.syncCounters });

  syncs.push(
    mirror(m.cacheHits, { cache: 'media' }, () => b.hits),
    mirror(m.cacheMisses, { cache: 'media' }, () => b.misses),
    mirror(m.cacheEvictions, { cache: 'media', reason: 'room' }, () => b.evicted.room),
    mirror(m.cacheEvictions, { cache: 'media', reason: 'idle' }, () => b.evicted.idle),
    mirror(m.cacheEvictions, { cache: 'media', reason: 'removed' }, () => b.evicted.removed),
    mirror(m.cacheHits, { cache: 'redis' }, () => r.cacheHits),
    mirror(m.cacheMisses, { cache: 'redis' }, () => r.cacheMisses),
  );
  const admitted = counter('media_cache_admissions_total', 'Blobs admitted to the cache', ['cache']);
  syncs.push(mirror(admitted, { cache: 'media' }, () => b.admitted));

  new Gauge({
    name: 'media_cache_bytes',
    help: 'Bytes of content held by the in-process blob cache',
    labelNames: ['cache'],
    registers,
    collect() {
      this.set({ cache: 'media' }, blob.usedBytes);
    },
  });
  new Gauge({
    name: 'media_cache_items',
    help: 'Blobs held by the in-process blob cache',
    labelNames: ['cache'],
    registers,
    collect() {
      this.set({ cache: 'media' }, blob.count);
    },
  });

  const commands = counter('media_redis_commands_total', 'Redis commands sent to a connected shard');
  const failures = counter(
    'media_redis_failures_total',
    'Redis calls that fell through to the normal path: error, timeout, or not_connected (not sent)',
    ['reason'],
  );
  const cacheWrites = counter(
    'media_redis_cache_writes_total',
    'Blob writes to the Redis cache: written, or dropped (too many in flight)',
    ['outcome'],
  );
  const locks = counter(
    'media_redis_locks_total',
    'Cross-instance locks: taken, busy (held elsewhere), or fallback (Redis unusable)',
    ['outcome'],
  );
  const notices = counter('media_redis_upload_notices_total', 'Async-upload notices received over pub/sub');
  syncs.push(
    mirror(commands, {}, () => r.commands),
    mirror(failures, { reason: 'error' }, () => r.failures - r.timeouts),
    mirror(failures, { reason: 'timeout' }, () => r.timeouts),
    mirror(failures, { reason: 'not_connected' }, () => r.skipped),
    mirror(cacheWrites, { outcome: 'written' }, () => r.cacheWrites),
    mirror(cacheWrites, { outcome: 'dropped' }, () => r.cacheWritesDropped),
    mirror(locks, { outcome: 'taken' }, () => r.locksTaken),
    mirror(locks, { outcome: 'busy' }, () => r.locksBusy),
    mirror(locks, { outcome: 'fallback' }, () => r.lockFallbacks),
    mirror(notices, {}, () => r.uploadNotices),
  );
  new Gauge({
    name: 'media_redis_shards_up',
    help: 'Redis shards connected now (of those configured)',
    registers,
    // Each HTTP thread has its own connections: a shard counts as up when every thread has it.
    aggregator: 'min',
    collect() {
      this.set(ring.connectedShards());
    },
  });
}
