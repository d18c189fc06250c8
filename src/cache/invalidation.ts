import type { Db } from '../db/driver.js';
import { invalidationsAfter, lastInvalidationId } from '../db/invalidations.js';
import type { Logger } from '../logging/logger.js';
import type { RedisMediaCache } from '../redis/media-cache.js';
import type { RedisRing } from '../redis/ring.js';
import type { BlobCache } from './blob-cache.js';
import type { MediaRowCache } from './media-rows.js';
import type { ThumbnailRowCache } from './thumbnail-rows.js';
import type { ThreadBus } from '../threads/bus.js';

// What every cache must forget when media changes state (quarantine, purge, unquarantine):
// this instance's caches at once; other instances through Redis pub/sub when configured (about
// a round trip), and through the database's invalidation log, read every POLL_MS, which cannot
// lose a message (pub/sub can, while Redis restarts). The staleness bound without Redis is
// POLL_MS plus a query; the row caches' own TTL (60 s) is the last backstop.

export const INVALIDATION_POLL_MS = 2000;
const CHANNEL = 'invalidate';
const POLL_ROWS = 50;
/** Past this many media in one change, the thumbnail row cache is cleared instead of scanned. */
const SCAN_LIMIT = 16;

export interface MediaChange {
  /** `origin/mediaId` of every media row whose answer changed. */
  media: string[];
  /** Hashes whose cached bytes must go (deleted blobs, quarantined content). */
  hashes: string[];
}

export interface InvalidationTargets {
  mediaRows: MediaRowCache;
  thumbnailRows: ThumbnailRowCache;
  blobCache: BlobCache;
  redis: { ring: RedisRing; media: RedisMediaCache };
  /** This process's other HTTP threads, when it has several: told at once, like Redis. */
  bus?: ThreadBus;
}

export class CacheInvalidator {
  private cursor = 0;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private unsubscribeThreads: (() => void) | null = null;
  private polling: Promise<void> = Promise.resolve();
  /** Changes applied from other instances (tests and metrics). */
  received = 0;

  constructor(
    private readonly targets: InvalidationTargets,
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  /** Forgets here, now. */
  apply(change: MediaChange): void {
    const { mediaRows, thumbnailRows, blobCache } = this.targets;
    for (const key of change.media) {
      const slash = key.indexOf('/');
      mediaRows.delete(key.slice(0, slash), key.slice(slash + 1));
    }
    if (change.media.length > SCAN_LIMIT) thumbnailRows.clear();
    else for (const key of change.media) thumbnailRows.deleteMedia(key);
    for (const h of change.hashes) blobCache.delete(h);
  }

  /**
   * After the state change committed (its log row written in the same transaction): forget
   * here, drop the shared Redis bytes, and tell the other instances.
   */
  announce(change: MediaChange): void {
    if (change.media.length === 0 && change.hashes.length === 0) return;
    this.apply(change);
    const { ring, media } = this.targets.redis;
    for (const h of change.hashes) media.drop(h);
    this.targets.bus?.publish(CHANNEL, JSON.stringify(change));
    if (ring.enabled) ring.publish(CHANNEL, change.hashes[0] ?? change.media[0]!, JSON.stringify(change));
  }

  /** Listens for other instances' changes: Redis at once, the log every POLL_MS (Postgres only:
   * the embedded database has one process, whose changes are applied as they are made). */
  async start(): Promise<void> {
    this.unsubscribe = this.targets.redis.ring.subscribe(CHANNEL, (message) => this.receive(message));
    this.unsubscribeThreads = this.targets.bus?.subscribe(CHANNEL, (message) => this.receive(message)) ?? null;
    if (this.db.kind === 'pglite') return;
    this.cursor = await lastInvalidationId(this.db);
    const tick = () => {
      this.polling = this.poll()
        .catch((e) => this.log.warn('could not read cache invalidations', { error: e as Error }))
        .finally(() => {
          if (this.timer === null) return;
          this.timer = setTimeout(tick, INVALIDATION_POLL_MS);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(tick, INVALIDATION_POLL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribeThreads?.();
    const t = this.timer;
    this.timer = null;
    if (t) clearTimeout(t);
    await this.polling;
  }

  private receive(message: string): void {
    try {
      const change = JSON.parse(message) as MediaChange;
      if (!Array.isArray(change.media) || !Array.isArray(change.hashes)) return;
      this.received++;
      this.apply(change);
    } catch {
      // Not ours: ignore.
    }
  }

  private async poll(): Promise<void> {
    for (;;) {
      // A purge batch's row is up to ~80 KB: 50 rows bound one read to a few MB.
      const rows = await invalidationsAfter(this.db, this.cursor, POLL_ROWS);
      for (const r of rows) {
        this.cursor = r.id;
        this.receive(r.payload);
      }
      if (rows.length < POLL_ROWS) return;
    }
  }
}
