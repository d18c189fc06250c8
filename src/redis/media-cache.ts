import type { MediaBody } from '../http/types.js';
import type { RedisRing } from './ring.js';

/** As MMR: cached bytes live 15 minutes, enough for a burst of downloads of a new file. */
export const CACHE_TTL_SECONDS = 15 * 60;
/** Writes are fire and forget; past this many in flight new ones are dropped, not queued. */
export const MAX_WRITES_IN_FLIGHT = 8;

// Small blobs cached in Redis by SHA-256, shared by every instance: a hit saves a datastore
// read (an S3 GET above all). Any failure is a miss, and the datastore answers.
export class RedisMediaCache {
  private writing = 0;

  constructor(
    private readonly ring: RedisRing,
    private readonly maxObjectBytes: () => number,
  ) {}

  /** Whether a blob of this size is cached at all. */
  accepts(size: number): boolean {
    return this.ring.enabled && size > 0 && size <= this.maxObjectBytes();
  }

  async get(sha256: string, size: number): Promise<Buffer | null> {
    const bytes = await this.ring.call(`media:${sha256}`, (c, k) => c.getBuffer(k));
    // A size mismatch (a write cut short) is a miss: the datastore copy is the truth.
    if (bytes && bytes.length === size) {
      this.ring.stats.cacheHits++;
      return bytes;
    }
    this.ring.stats.cacheMisses++;
    return null;
  }

  put(sha256: string, bytes: Buffer): void {
    if (!this.accepts(bytes.length)) return;
    if (this.writing >= MAX_WRITES_IN_FLIGHT) {
      this.ring.stats.cacheWritesDropped++;
      return;
    }
    this.writing++;
    this.ring.stats.cacheWrites++;
    void this.ring
      .call(`media:${sha256}`, (c, k) => c.set(k, bytes, 'EX', CACHE_TTL_SECONDS))
      .finally(() => this.writing--);
  }

  /** Forgets a hash's bytes (quarantine, purge); a failure leaves them to their TTL. */
  drop(sha256: string): void {
    if (!this.ring.enabled) return;
    void this.ring.call(`media:${sha256}`, (c, k) => c.del(k));
  }

  /** A body whose one-call read (small files) tries Redis first and fills it after a miss. */
  wrap(body: MediaBody, sha256: string): MediaBody {
    const read = body.readAll;
    if (!read || !this.accepts(body.size)) return body;
    return {
      ...body,
      readAll: async () => {
        const hit = await this.get(sha256, body.size);
        if (hit) return hit;
        const bytes = await read();
        this.put(sha256, bytes);
        return bytes;
      },
    };
  }
}
