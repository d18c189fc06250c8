// CommonJS so the launcher (src/launcher.cts) can use it before anything starts libuv's pool.
import { availableParallelism } from 'node:os';

// Thread counts of the image pools, and the libuv thread pool they need. sharp runs its work
// on libuv's pool, which every worker thread of the process shares and which has 4 threads
// unless UV_THREADPOOL_SIZE says otherwise before libuv starts: measured on 16 cores, sharp in a
// 16-thread pool plateaued at 42 thumbnails/s with 4 libuv threads and reached 134/s with 16.

export interface PoolThreads {
  static: number;
  animated: number;
  blurhash: number;
}

/** thumbnails.numWorkers (0 = one per core) → threads per pool. */
export function poolThreads(numWorkers: number, cores = availableParallelism()): PoolThreads {
  const n = numWorkers > 0 ? numWorkers : cores;
  return { static: n, animated: Math.max(1, Math.ceil(n / 2)), blurhash: Math.max(1, Math.ceil(n / 4)) };
}

/** Past this many HTTP threads the one database, sink and pool owner (the main thread) is the
 * limit, not the cores; an operator may still set more (repo.httpThreads, up to 64). */
export const AUTO_HTTP_THREADS_MAX = 16;

/** repo.httpThreads: 0 is one per core, capped; any other value is taken as given. */
export function httpThreadCount(configured: number, cores = availableParallelism()): number {
  if (configured > 0) return configured;
  return Math.max(1, Math.min(AUTO_HTTP_THREADS_MAX, cores));
}

/**
 * libuv threads: one per image thread, plus libuv's default 4 for file, DNS and crypto work,
 * or one per HTTP thread where there are more (each reads files for its downloads through the
 * same process-wide pool).
 */
export function libuvThreadsFor(t: PoolThreads, httpThreads = 1): number {
  return Math.min(1024, t.static + t.animated + t.blurhash + Math.max(4, httpThreads));
}
