import type { Bucket } from '../ratelimit/bucket.js';

// The rate limiter's per-instance buckets, shared by the HTTP threads of one process: a client
// whose connections land on four threads must get one budget, not four. A client key hashes to
// one slot of a table in a SharedArrayBuffer; the slot holds the key's fingerprint and its two
// buckets (requests, bytes), and a one-word lock held only while a bucket is read, changed and
// written back (a few float operations, so waiters spin rather than sleep).
//
// A key that finds its slot taken by another key takes it over with full buckets: the other
// client's next request starts full too. That errs towards letting a request through, never
// towards refusing one, and with 65,536 slots is rare below tens of thousands of active clients.

export const DEFAULT_BUCKET_SLOTS = 1 << 16;
const META = 3; // lock, fingerprint a, fingerprint b
const FLOATS = 4; // request tokens, request time, byte tokens, byte time

export function sharedBucketMemory(slots = DEFAULT_BUCKET_SLOTS): SharedArrayBuffer {
  return new SharedArrayBuffer(slots * (META * 4 + FLOATS * 8));
}

/** Two independent 32-bit FNV-1a variants: slot choice and a 64-bit fingerprint together. */
function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [a | 1, b]; // a is never 0: 0 marks an empty slot
}

export interface BucketPair {
  requests: Bucket;
  bytes: Bucket;
}

export class ThreadBuckets {
  private readonly meta: Int32Array;
  private readonly floats: Float64Array;
  private readonly slots: number;
  /** Reused for every call: the caller's function sees it only while the slot is locked. */
  private readonly pair: BucketPair = { requests: { tokens: 0, at: 0 }, bytes: { tokens: 0, at: 0 } };

  constructor(memory: SharedArrayBuffer) {
    this.slots = Math.floor(memory.byteLength / (META * 4 + FLOATS * 8));
    this.meta = new Int32Array(memory, 0, this.slots * META);
    this.floats = new Float64Array(memory, this.slots * META * 4, this.slots * FLOATS);
  }

  /**
   * Runs `fn` on `key`'s buckets with the slot locked, and stores what it left in them. A key
   * seen for the first time (or after another key took its slot) starts with `fresh()`.
   */
  with<R>(key: string, fresh: () => BucketPair, fn: (b: BucketPair) => R): R {
    const [a, b] = hashes(key);
    const slot = (a >>> 0) % this.slots;
    const m = slot * META;
    const f = slot * FLOATS;
    for (let spins = 0; Atomics.compareExchange(this.meta, m, 0, 1) !== 0; spins++) {
      // The holder is in a few float operations; after a while it was descheduled: yield.
      if (spins > 1000) Atomics.wait(this.meta, m, 1, 1);
    }
    try {
      const pair = this.pair;
      if (this.meta[m + 1] === a && this.meta[m + 2] === b) {
        pair.requests.tokens = this.floats[f]!;
        pair.requests.at = this.floats[f + 1]!;
        pair.bytes.tokens = this.floats[f + 2]!;
        pair.bytes.at = this.floats[f + 3]!;
      } else {
        const init = fresh();
        pair.requests.tokens = init.requests.tokens;
        pair.requests.at = init.requests.at;
        pair.bytes.tokens = init.bytes.tokens;
        pair.bytes.at = init.bytes.at;
        this.meta[m + 1] = a;
        this.meta[m + 2] = b;
      }
      const out = fn(pair);
      this.floats[f] = pair.requests.tokens;
      this.floats[f + 1] = pair.requests.at;
      this.floats[f + 2] = pair.bytes.tokens;
      this.floats[f + 3] = pair.bytes.at;
      return out;
    } finally {
      Atomics.store(this.meta, m, 0);
      Atomics.notify(this.meta, m, 1);
    }
  }

  /** A copy of `key`'s buckets as they stand (null when the table holds none for it). */
  peek(key: string): BucketPair | null {
    const [a, b] = hashes(key);
    const slot = (a >>> 0) % this.slots;
    if (Atomics.load(this.meta, slot * META + 1) !== a || Atomics.load(this.meta, slot * META + 2) !== b) return null;
    const f = slot * FLOATS;
    return {
      requests: { tokens: this.floats[f]!, at: this.floats[f + 1]! },
      bytes: { tokens: this.floats[f + 2]!, at: this.floats[f + 3]! },
    };
  }
}
