import { randomBytes } from 'node:crypto';
import type { RedisRing } from './ring.js';

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
      let hold: Promise<unknown> | null = null;
      const release = () => void ring.call(key, (c, k) => c.eval(RELEASE, 1, k, token));
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
    if (!waited) ring.stats.locksBusy++;
    waited = true;
    const done = await opts.recheck();
    if (done !== null) return done;
    if (Date.now() >= deadline) break; // the holder is slow or gone: do it ourselves
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  return work(() => undefined);
}
