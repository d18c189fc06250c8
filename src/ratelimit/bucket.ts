// Token-bucket arithmetic, shared by the per-instance buckets and (in Lua) the Redis ones.
// A bucket holds `tokens` at time `at` (ms) and refills at `perMs` up to `capacity`. The byte
// bucket may go below zero down to `floor` (MMR's overflowLimitBytes: one file may take a
// client over its capacity once); the request bucket's floor is 0.

export interface BucketParams {
  capacity: number;
  perMs: number;
  floor: number;
}

export interface Bucket {
  tokens: number;
  at: number;
}

/** The longest Retry-After we state: a bucket that never drains still gets a finite answer. */
export const MAX_RETRY_MS = 3_600_000;

export function fullBucket(p: BucketParams, now: number): Bucket {
  return { tokens: p.capacity, at: now };
}

export function refill(b: Bucket, p: BucketParams, now: number): void {
  if (now > b.at) {
    b.tokens = Math.min(p.capacity, b.tokens + (now - b.at) * p.perMs);
    b.at = now;
  }
}

/** Milliseconds until the bucket holds `need` tokens (0 when it does now). */
export function waitFor(tokens: number, need: number, p: BucketParams): number {
  if (tokens >= need) return 0;
  if (p.perMs <= 0) return MAX_RETRY_MS;
  return Math.min(MAX_RETRY_MS, Math.ceil((need - tokens) / p.perMs));
}

/** Takes one token: 0 when granted, else the milliseconds until one is there. */
export function takeOne(b: Bucket, p: BucketParams, now: number): number {
  refill(b, p, now);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return waitFor(b.tokens, 1, p);
}

/** Charges (or with a negative cost refunds) bytes; the level never drops below the floor. */
export function charge(b: Bucket, p: BucketParams, now: number, cost: number): void {
  refill(b, p, now);
  b.tokens = Math.min(p.capacity, Math.max(p.floor, b.tokens - cost));
}
