import type { RedisRing } from '../redis/ring.js';
import { waitFor, type BucketParams } from './bucket.js';
import type { ClientState } from './state.js';

// The buckets every instance shares through Redis, used so the hot path never waits on a
// round trip:
// - requests: an instance leases a few tokens at a time from the client's shared bucket (one
//   atomic script call) and spends them locally, asking for the next lease as soon as half is
//   spent. Leased tokens are taken from the shared bucket, so the fleet never grants more than
//   the bucket allows; an unspent lease lapses after LEASE_MS (a client that moved to another
//   instance is refused a little early, never admitted a little more).
// - bytes: decided from the last seen level of the shared bucket minus what was charged here
//   since; charges are summed per client and sent every FLUSH_MS (one script call per client,
//   which answers the new level).
// Redis time is used inside the scripts, so instances' clocks need not agree.

/** An unspent lease lapses after this. */
export const LEASE_MS = 2000;
/** A client with no lease waits at most this for Redis, then the local bucket decides. */
export const WAIT_MS = 50;
/** Byte charges are sent at most this often per client. */
export const FLUSH_MS = 50;
/** A byte view older than this is not trusted (Redis away, or the client idle here). */
export const VIEW_MS = 5000;

const NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)";
const LOAD = `local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) local at = tonumber(v[2])
if tokens == nil then tokens = cap at = now end
if now > at then tokens = math.min(cap, tokens + (now - at) * perMs) end`;
const STORE = `redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
if perMs > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / perMs) + 1000) end`;

/** ARGV: capacity, refill per ms, tokens wanted. Returns {granted, retryAfterMs}. */
export const TAKE = `local cap = tonumber(ARGV[1]) local perMs = tonumber(ARGV[2]) local want = tonumber(ARGV[3])
${NOW_MS}
${LOAD}
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
${STORE}
local retry = 0
if granted == 0 then
  if perMs > 0 then retry = math.ceil((1 - tokens) / perMs) else retry = 3600000 end
end
return {granted, retry}`;

/** ARGV: capacity, refill per ms, floor, cost (negative refunds). Returns the new level. */
export const CHARGE = `local cap = tonumber(ARGV[1]) local perMs = tonumber(ARGV[2]) local floor = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
${NOW_MS}
${LOAD}
tokens = math.min(cap, math.max(floor, tokens - cost))
${STORE}
return math.floor(tokens)`;

/** Tokens per lease: a tenth of the burst (at least 1, at most 1000). */
export function leaseSize(p: BucketParams): number {
  return Math.max(1, Math.min(1000, Math.floor(p.capacity / 10)));
}

export class SharedBuckets {
  private dirty = new Map<string, ClientState>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ring: RedisRing,
    /** Called once per Redis call that failed or timed out (the fallback metric). */
    private readonly onFallback: () => void,
    private readonly byteParams: () => BucketParams,
  ) {}

  get enabled(): boolean {
    return this.ring.enabled;
  }

  /**
   * A request token: 0 granted, > 0 refused for that many ms, undefined when Redis did not
   * answer in time (the caller decides locally). Without a lease in hand it waits for one.
   */
  async takeRequest(st: ClientState, p: BucketParams, now: number): Promise<number | undefined> {
    const quick = this.spend(st, p, now);
    if (quick !== null) return quick;
    for (let attempt = 0; attempt < 2; attempt++) {
      const fetch = st.fetching ?? this.fetchLease(st, p);
      const answered = await Promise.race([fetch, sleep(WAIT_MS)]);
      if (answered === 'slow') this.onFallback();
      if (answered !== true) return undefined; // slow, or down (fetchLease counted it)
      const after = this.spend(st, p, Date.now());
      if (after !== null) return after;
    }
    return undefined; // Redis answered nothing usable (it was down): decide locally
  }

  /** Spends from the lease or repeats a known refusal; null when Redis must be asked. */
  private spend(st: ClientState, p: BucketParams, now: number): number | null {
    if (st.deniedUntil > now) return st.deniedUntil - now;
    if (st.leaseUntil < now) st.lease = 0;
    if (st.lease < 1) return null;
    st.lease--;
    if (st.lease <= leaseSize(p) / 2 && !st.fetching) void this.fetchLease(st, p);
    return 0;
  }

  private fetchLease(st: ClientState, p: BucketParams): Promise<boolean> {
    const want = leaseSize(p);
    const f = this.ring
      .call(`rl:r:${st.key}`, (c, k) => c.eval(TAKE, 1, k, p.capacity, p.perMs, want) as Promise<[number, number]>)
      .then((res) => {
        st.fetching = null;
        if (!Array.isArray(res)) {
          this.onFallback();
          return false;
        }
        const now = Date.now();
        if (res[0] > 0) {
          // A fresh lease replaces a lapsed one and tops up a live one.
          st.lease = (st.leaseUntil < now ? 0 : st.lease) + res[0];
          st.leaseUntil = now + LEASE_MS;
          st.deniedUntil = 0;
        } else st.deniedUntil = now + Math.max(1, res[1]);
        return true;
      });
    st.fetching = f;
    return f;
  }

  /** The shared byte level as this instance sees it, or null when it does not know it. */
  bytesLevel(st: ClientState, p: BucketParams, now: number): number | null {
    if (st.viewAt === 0 || now - st.viewAt > VIEW_MS) return null;
    return Math.min(p.capacity, st.view + (now - st.viewAt) * p.perMs) - st.pendingBytes;
  }

  /** Milliseconds until the shared byte bucket has room, from the view (0 = has room now). */
  bytesWait(level: number, p: BucketParams): number {
    return level > 0 ? 0 : waitFor(level, 1, p);
  }

  chargeBytes(st: ClientState, cost: number): void {
    st.pendingBytes += cost;
    this.dirty.set(st.key, st);
    if (!this.timer) {
      this.timer = setInterval(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  private flush(): void {
    if (this.dirty.size === 0) {
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    const p = this.byteParams();
    const batch = [...this.dirty.values()];
    this.dirty.clear();
    for (const st of batch) {
      const cost = st.pendingBytes;
      void this.ring
        .call(`rl:b:${st.key}`, (c, k) => c.eval(CHARGE, 1, k, p.capacity, p.perMs, p.floor, cost) as Promise<number>)
        .then((level) => {
          st.pendingBytes -= cost;
          if (typeof level !== 'number') {
            this.onFallback();
            st.viewAt = 0; // the local bucket decides until Redis answers again
            return;
          }
          st.view = level;
          st.viewAt = Date.now();
        });
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.dirty.clear();
  }
}

function sleep(ms: number): Promise<'slow'> {
  return new Promise((r) => setTimeout(() => r('slow'), ms).unref());
}
