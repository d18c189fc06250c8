import { LRUCache } from 'lru-cache';
import type { DownloadCacheSection } from '../config/schema.js';
import { DownloadTracker } from './download-tracker.js';

// Hot blob contents in memory, keyed by sha256 so every mxc with the same content shares one
// entry. The policy is MMR's downloads.cache:
// - a blob is admitted after minDownloads downloads within trackedMinutes, never above
//   maxFileSizeBytes;
// - an admitted blob stays at least minCacheTimeSeconds;
// - room is made only from entries past that minimum that are less popular than the newcomer
//   and not much larger than it (MMR: under 1.25x), least popular then smallest first; if they
//   do not free enough, nothing is evicted and the newcomer stays out;
// - an evicted blob cannot come back for minEvictedTimeSeconds.
// Entries nobody downloaded for trackedMinutes drop out by themselves (MMR let them expire too),
// so a burst that is over does not hold memory until some newcomer needs the room.

export type BlobLookup =
  | { hit: true; bytes: Buffer }
  /** admit: this download crossed the threshold; hand the bytes to offer() (or fill()). */
  | { hit: false; admit: boolean };

interface Entry {
  bytes: Buffer;
  admittedAt: number;
  lastHitAt: number;
}

export interface BlobCacheOptions extends DownloadCacheSection {
  /** Clock in ms; tests and the trace benchmark drive their own. */
  now?: () => number;
  /** Blobs whose downloads are counted at once (bounds the tracker's memory). */
  maxTracked?: number;
}

/** MMR: entries up to this factor of the newcomer's size may be evicted for it. */
const EVICT_SIZE_FACTOR = 1.25;
const MISS: BlobLookup = { hit: false, admit: false };

/** Why an entry left: made room for a hotter blob, nobody asked for it within the idle time,
 * or its media was removed (purge, quarantine). */
export type EvictionReason = 'room' | 'idle' | 'removed';

/** Plain counters, read by the metrics at scrape time (nothing on the download path touches
 * prom-client). */
export interface BlobCacheStats {
  hits: number;
  misses: number;
  admitted: number;
  evicted: Record<EvictionReason, number>;
}

export class BlobCache {
  private readonly entries: LRUCache<string, Entry> | null;
  private readonly tracker: DownloadTracker | null;
  /** sha256 → time until which it may not be admitted (evicted or refused recently). */
  private readonly cooldown: LRUCache<string, number> | null;
  /** sha256 → when admission was last refused for want of room, and at how many downloads. */
  private readonly refused: LRUCache<string, { downloads: number; until: number }> | null;
  private readonly filling = new Set<string>();
  private fillingBytes = 0;
  private readonly now: () => number;
  private readonly maxFile: number;
  private readonly idleMs: number;
  readonly stats: BlobCacheStats = { hits: 0, misses: 0, admitted: 0, evicted: { room: 0, idle: 0, removed: 0 } };

  constructor(private readonly opts: BlobCacheOptions) {
    this.now = opts.now ?? Date.now;
    this.maxFile = Math.min(opts.maxFileSizeBytes, opts.maxSizeBytes);
    this.idleMs = Math.max(opts.trackedMinutes * 60_000, opts.minCacheTimeSeconds * 1000);
    const on = opts.enabled && this.maxFile > 0;
    const maxTracked = opts.maxTracked ?? 100_000;
    this.tracker = on ? new DownloadTracker(opts.trackedMinutes * 60_000, maxTracked, this.now) : null;
    this.cooldown = on ? new LRUCache<string, number>({ max: maxTracked }) : null;
    this.refused = on ? new LRUCache<string, { downloads: number; until: number }>({ max: maxTracked }) : null;
    this.entries = on
      ? new LRUCache<string, Entry>({
          // The hard bound. Room is made by policy before every set, so lru-cache's own LRU
          // eviction never has to act; if it ever did, the bound still holds.
          maxSize: opts.maxSizeBytes,
          sizeCalculation: (e) => Math.max(1, e.bytes.length),
        })
      : null;
  }

  get enabled(): boolean {
    return this.entries !== null;
  }

  /** Bytes of content held now (never above maxSizeBytes). */
  get usedBytes(): number {
    return this.entries?.calculatedSize ?? 0;
  }

  get count(): number {
    return this.entries?.size ?? 0;
  }

  /** Counts one download of the blob; returns its bytes when cached. */
  lookup(sha256: string, size: number): BlobLookup {
    if (!this.entries || !this.tracker) return MISS;
    const t = this.now();
    const downloads = this.tracker.hit(sha256);
    const e = this.entries.get(sha256);
    if (e) {
      if (t - e.lastHitAt < this.idleMs) {
        e.lastHitAt = t;
        this.stats.hits++;
        return { hit: true, bytes: e.bytes };
      }
      this.entries.delete(sha256);
      this.stats.evicted.idle++;
    }
    this.stats.misses++;
    if (downloads < this.opts.minDownloads || size > this.maxFile || this.filling.has(sha256)) return MISS;
    if (this.coolingDown(sha256, t)) return MISS;
    // A blob refused for want of room is looked at again once its downloads have doubled or
    // minEvictedTimeSeconds have passed, so a popular blob that does not fit does not rescan
    // the cache on every download, yet one that keeps getting hotter is not locked out.
    const refused = this.refused!.get(sha256);
    if (refused && downloads < refused.downloads * 2 && t < refused.until) return MISS;
    if (this.victims(size, downloads, t) === null) {
      this.refused!.set(sha256, { downloads, until: t + this.opts.minEvictedTimeSeconds * 1000 });
      return MISS;
    }
    this.refused!.delete(sha256);
    return { hit: false, admit: true };
  }

  /** Admits the blob's bytes if the policy still allows; returns whether they were stored. */
  offer(sha256: string, bytes: Buffer): boolean {
    if (!this.entries || !this.tracker || bytes.length > this.maxFile || this.entries.has(sha256)) return false;
    const t = this.now();
    const victims = this.victims(bytes.length, this.tracker.count(sha256), t);
    if (victims === null) return false;
    for (const key of victims) this.evict(key, t);
    // A slice of a shared pool slab would pin the whole slab; keep an exact-size copy instead.
    const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes : Buffer.from(bytes);
    this.entries.set(sha256, { bytes: own, admittedAt: t, lastHitAt: t });
    this.stats.admitted++;
    return true;
  }

  /** Admission by one extra read (blobs the request itself does not read whole). At most one
   * read per blob at a time, and at most maxFileSizeBytes being read for fills at once, so a
   * crowd of blobs turning hot together cannot buffer more than one large file beyond the
   * cache. A failed or skipped read only means the blob stays uncached for now. */
  fill(sha256: string, size: number, read: () => Promise<Buffer>): void {
    if (!this.entries || this.filling.has(sha256) || this.fillingBytes + size > this.maxFile) return;
    this.filling.add(sha256);
    this.fillingBytes += size;
    read()
      .then((bytes) => this.offer(sha256, bytes))
      .catch(() => undefined)
      .finally(() => {
        this.filling.delete(sha256);
        this.fillingBytes -= size;
      });
  }

  /** Drops a blob (purge, quarantine): the next download reads the datastore. */
  delete(sha256: string): void {
    if (this.entries?.delete(sha256)) this.stats.evicted.removed++;
  }

  private coolingDown(sha256: string, t: number): boolean {
    const until = this.cooldown!.get(sha256);
    if (until === undefined) return false;
    if (t < until) return true;
    this.cooldown!.delete(sha256);
    return false;
  }

  private evict(sha256: string, t: number): void {
    this.entries!.delete(sha256);
    this.stats.evicted.room++;
    this.cooldown!.set(sha256, t + this.opts.minEvictedTimeSeconds * 1000);
  }

  /**
   * The entries to evict so `size` bytes fit, or null when that is not possible under the
   * policy. Idle entries go first and free (no cooldown: nobody wanted them).
   */
  private victims(size: number, downloads: number, t: number): string[] | null {
    const entries = this.entries!;
    let free = this.opts.maxSizeBytes - entries.calculatedSize;
    if (free >= size) return [];
    const idle = [...entries.entries()].filter(([, e]) => t - e.lastHitAt >= this.idleMs);
    for (const [key, e] of idle) {
      entries.delete(key);
      this.stats.evicted.idle++;
      free += e.bytes.length;
    }
    if (free >= size) return [];
    const candidates: { key: string; bytes: number; downloads: number }[] = [];
    for (const [key, e] of entries.entries()) {
      if (t - e.admittedAt < this.opts.minCacheTimeSeconds * 1000) continue;
      if (e.bytes.length >= size * EVICT_SIZE_FACTOR) continue;
      const d = this.tracker!.count(key);
      if (d >= downloads) continue;
      candidates.push({ key, bytes: e.bytes.length, downloads: d });
    }
    candidates.sort((a, b) => a.downloads - b.downloads || a.bytes - b.bytes);
    const out: string[] = [];
    for (const c of candidates) {
      if (free >= size) break;
      out.push(c.key);
      free += c.bytes;
    }
    return free >= size ? out : null;
  }
}
