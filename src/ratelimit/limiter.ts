import { Transform, pipeline, type Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { RateLimitSection } from '../config/schema.js';
import type { RedisRing } from '../redis/ring.js';
import { charge, fullBucket, refill, takeOne, waitFor } from './bucket.js';
import { limitParams, type LimitParams } from './params.js';
import { SharedBuckets } from './shared.js';
import { newClientState, type ClientState } from './state.js';
import type { BucketPair, ThreadBuckets } from '../threads/shared-buckets.js';

/** Buckets held per instance at most; the least recently used client is dropped first. */
export const MAX_CLIENTS = 100_000;

export type LimitReason = 'requests' | 'bytes';

export interface LimiterMetrics {
  rejected(reason: LimitReason, action: string): void;
  fallback(): void;
}

/** A refusal: which bucket, and when to come back. */
export interface Refusal {
  reason: LimitReason;
  retryAfterMs: number;
}

// Per-client buckets (MMR's rateLimit): a request bucket (requestsPerSecond, burst) and a byte
// bucket for downloads and thumbnails (capacityBytes draining drainBytesPerMinute, overflow
// once). Every decision is made from memory; with Redis the memory holds a lease of the shared
// bucket (shared.ts), and without it (or while it is away) the per-instance buckets decide.
export class RateLimiter {
  private clients: LRUCache<string, ClientState>;
  private shared: SharedBuckets;
  private params: LimitParams;
  private paramsOf: RateLimitSection;
  /** Failed authentications per IP (local only: a shield for the homeserver, not a budget). */
  private badAuth: LRUCache<string, ClientState>;

  constructor(
    private readonly cfg: () => RateLimitSection,
    ring: RedisRing,
    private readonly metrics: LimiterMetrics,
    /** The process's HTTP threads' shared buckets, when it has several (one budget per client
     * across threads); without it the buckets live in `clients` here. */
    private readonly threads?: ThreadBuckets,
  ) {
    this.paramsOf = cfg();
    this.params = limitParams(this.paramsOf);
    this.clients = new LRUCache({ max: MAX_CLIENTS, ttl: this.params.idleMs, updateAgeOnGet: true });
    this.badAuth = new LRUCache({ max: MAX_CLIENTS, ttl: this.params.idleMs, updateAgeOnGet: true });
    this.shared = new SharedBuckets(
      ring,
      () => metrics.fallback(),
      () => this.current().bytes,
    );
  }

  /** The parameters of the section in force (a reload hands over a new object). */
  current(): LimitParams {
    const c = this.cfg();
    if (c !== this.paramsOf) {
      this.paramsOf = c;
      this.params = limitParams(c);
    }
    return this.params;
  }

  /** Whether this client is never limited (an exempt CIDR or user glob). */
  exempt(ip: string, userId: string | null): boolean {
    const p = this.current();
    if (p.exemptCidrs.size > 0 && p.exemptCidrs.contains(ip)) return true;
    return userId !== null && p.exemptUsers !== null && p.exemptUsers.test(userId);
  }

  private state(cache: LRUCache<string, ClientState>, key: string, p: LimitParams, now: number): ClientState {
    let st = cache.get(key);
    if (!st) {
      st = newClientState(key, fullBucket(p.requests, now), fullBucket(p.bytes, now));
      cache.set(key, st, { ttl: p.idleMs });
    }
    return st;
  }

  /** Runs fn on the client's per-instance buckets: this thread's, or the threads' shared ones. */
  private local<R>(st: ClientState, p: LimitParams, now: number, fn: (b: BucketPair) => R): R {
    if (!this.threads) return fn(st);
    return this.threads.with(
      st.key,
      () => ({ requests: fullBucket(p.requests, now), bytes: fullBucket(p.bytes, now) }),
      fn,
    );
  }

  /** Takes one request token for `client`; a refusal, or null when the request may go on. */
  async takeRequest(client: string, action: string): Promise<Refusal | null> {
    const p = this.current();
    const now = Date.now();
    const st = this.state(this.clients, client, p, now);
    // The per-instance bucket is always charged: it decides when Redis cannot, and is warm then.
    const local = this.local(st, p, now, (b) => takeOne(b.requests, p.requests, now));
    let wait: number | undefined = local;
    if (this.shared.enabled) {
      wait = await this.shared.takeRequest(st, p.requests, now);
      if (wait === undefined) wait = local;
    }
    if (wait === 0) return null;
    this.metrics.rejected('requests', action);
    return { reason: 'requests', retryAfterMs: wait };
  }

  /** Whether the client's byte bucket has room (a download may start); a refusal otherwise. */
  checkBytes(client: string, action: string): Refusal | null {
    const p = this.current();
    const now = Date.now();
    const st = this.state(this.clients, client, p, now);
    let level = this.local(st, p, now, (b) => {
      refill(b.bytes, p.bytes, now);
      return b.bytes.tokens;
    });
    if (this.shared.enabled) level = this.shared.bytesLevel(st, p.bytes, now) ?? level;
    if (level > 0) return null;
    this.metrics.rejected('bytes', action);
    return { reason: 'bytes', retryAfterMs: waitFor(level, 1, p.bytes) };
  }

  /** Charges bytes served (negative: refunds); a charge that empties the bucket limits the next request. */
  chargeBytes(client: string, bytes: number): void {
    if (bytes === 0) return;
    const p = this.current();
    const now = Date.now();
    const st = this.state(this.clients, client, p, now);
    this.local(st, p, now, (b) => charge(b.bytes, p.bytes, now, bytes));
    if (this.shared.enabled) this.shared.chargeBytes(st, bytes);
  }

  /**
   * A body of unknown length (remote media streamed through, federation multipart): charged
   * `upFront` now (MMR charges remote fetches downloads.maxBytes), and refunded what was not
   * sent once it ends. Returns the stream to send.
   */
  chargeStream(client: string, body: Readable, upFront: number): Readable {
    this.chargeBytes(client, upFront);
    let sent = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        cb(null, chunk);
      },
    });
    pipeline(body, counted, () => this.chargeBytes(client, sent - upFront));
    return counted;
  }

  /** Whether `ip` has failed authentication too often lately (checked before any token lookup). */
  authShielded(ip: string): number {
    const st = this.threads ? this.threads.peek(`auth:${ip}`) : this.badAuth.get(ip);
    if (!st) return 0;
    const p = this.current();
    refill(st.requests, p.requests, Date.now());
    return waitFor(st.requests.tokens, 1, p.requests);
  }

  /** Counts a failed authentication from `ip` against its shield bucket. */
  authFailed(ip: string): void {
    const p = this.current();
    const now = Date.now();
    if (this.threads) {
      const full = () => ({ requests: fullBucket(p.requests, now), bytes: fullBucket(p.bytes, now) });
      this.threads.with(`auth:${ip}`, full, (b) => takeOne(b.requests, p.requests, now));
    } else takeOne(this.state(this.badAuth, ip, p, now).requests, p.requests, now);
  }

  /** Sampled at scrape: clients held, and their mean request and byte bucket fill (0..1). */
  sample(): { clients: number; requestsFill: number; bytesFill: number } {
    const p = this.current();
    const now = Date.now();
    let n = 0,
      req = 0,
      bytes = 0;
    for (const held of this.clients.values()) {
      const st = this.threads?.peek(held.key) ?? held;
      n++;
      req += Math.min(1, (st.requests.tokens + (now - st.requests.at) * p.requests.perMs) / p.requests.capacity);
      bytes += Math.min(1, Math.max(0, st.bytes.tokens + (now - st.bytes.at) * p.bytes.perMs) / p.bytes.capacity);
    }
    return { clients: n, requestsFill: n ? req / n : 1, bytesFill: n ? bytes / n : 1 };
  }

  close(): void {
    this.shared.close();
    this.clients.clear();
    this.badAuth.clear();
  }
}
