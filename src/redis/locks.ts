import { randomBytes } from 'node:crypto';
import type { RedisRing } from './ring.js';
import type { SharedLocks } from '../threads/shared-locks.js';

// Deletes the lock only if it still holds our token: a lock that expired and was taken by
// another instance must not be released by us.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/** How often a caller that found the lock held elsewhere looks again. */
export const LOCK_POLL_MS = 100;

export interface CoordinateOptions<T> {
  /** Lock lifetime: a crashed holder blocks others at most this long. */
  ttlMs: number;
  /** How long to wait on another instance's lock before doing the work anyway. */
  waitMs: number;
  /** After waiting: the other instance's result, if it has landed (then `work` is skipped). */
  recheck: () => Promise<T | null>;
  /** The process's HTTP threads' locks, when it has several: taken first, so threads coalesce
   * without Redis and only one thread per process asks Redis. */
  threads?: SharedLocks;
}

/**
 * Runs `work` under a cross-instance lock named `name` (SET NX PX with a random token). When
 * another instance holds it, waits for it, then takes its result through `recheck`. When
 * Redis is off, down or slow, runs `work` straight away: local singleflight still coalesces
 * within this process, and the database settles races between instances. `work` may hand
 * back a promise through `holdUntil` to keep the lock past its return (background storing).
 */
export async function coordinate<T>(
  ring: RedisRing | undefined,
  name: string,
  opts: CoordinateOptions<T>,
  work: (holdUntil: (p: Promise<unknown>) => void) => Promise<T>,
): Promise<T> {
  if (!opts.threads) return acrossInstances(ring, name, opts, work);
  return acrossThreads(opts.threads, name, opts, (threadHold) =>
    acrossInstances(ring, name, opts, (instanceHold) =>
      work((p) => {
        threadHold(p);
        instanceHold(p);
      }),
    ),
  );
}

/**
 * With the lock taken: after a wait, the holder's result if it landed; else the work, the lock
 * released when it returns or, when it handed one to holdUntil, once that promise settles.
 */
async function holding<T>(
  waited: boolean,
  opts: CoordinateOptions<T>,
  work: (holdUntil: (p: Promise<unknown>) => void) => Promise<T>,
  release: () => void,
): Promise<T> {
  let hold: Promise<unknown> | null = null;
  try {
    if (waited) {
      const done = await opts.recheck();
      if (done !== null) return done;
    }
    return await work((p) => {
      hold = p;
    });
  } finally {
    if (hold) (hold as Promise<unknown>).then(release, release);
    else release();
  }
}

/** The same contract as Redis's lock, between this process's threads: no expiry (a thread that
 * dies ends the process), a waiter woken by the release rather than a poll. */
async function acrossThreads<T>(
  locks: SharedLocks,
  name: string,
  opts: CoordinateOptions<T>,
  work: (holdUntil: (p: Promise<unknown>) => void) => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + opts.waitMs;
  let waited = false;
  for (;;) {
    const token = locks.tryLock(name);
    if (token) return holding(waited, opts, work, () => locks.unlock(token));
    waited = true;
    const left = deadline - Date.now();
    if (left <= 0) return work(() => undefined); // the holder is slow: do it ourselves
    await locks.waitFree(name, left);
  }
}

async function acrossInstances<T>(
  ring: RedisRing | undefined,
  name: string,
  opts: CoordinateOptions<T>,
  work: (holdUntil: (p: Promise<unknown>) => void) => Promise<T>,
): Promise<T> {
  if (!ring?.enabled) return work(() => undefined);
  const key = `lock:${name}`;
  const token = randomBytes(12).toString('hex');
  const deadline = Date.now() + opts.waitMs;
  let waited = false;
  for (;;) {
    const got = await ring.call(key, (c, k) => c.set(k, token, 'PX', opts.ttlMs, 'NX'));
    if (got === undefined) {
      ring.stats.lockFallbacks++;
      break; // Redis unusable: never block on it
    }
    if (got === 'OK') {
      ring.stats.locksTaken++;
      return holding(waited, opts, work, () => void ring.call(key, (c, k) => c.eval(RELEASE, 1, k, token)));
    }
    if (!waited) ring.stats.locksBusy++;
    waited = true;
    const done = await opts.recheck();
    if (done !== null) return done;
    if (Date.now() >= deadline) break; // the holder is slow or gone: do it ourselves
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  return work(() => undefined);
}
