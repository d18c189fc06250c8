// Counters for everything Redis does or fails to do. Plain numbers so the metrics work can read
// them as counters later without this code knowing about prom-client.
export interface RedisStats {
  /** Commands sent to a ready shard. */
  commands: number;
  /** Commands that failed (error or timeout) and fell through to the normal path. */
  failures: number;
  /** Of the failures, those that hit the command timeout. */
  timeouts: number;
  /** Calls not sent because the shard was not connected (no queueing while it is down). */
  skipped: number;
  cacheHits: number;
  cacheMisses: number;
  cacheWrites: number;
  /** Cache writes dropped because too many were already in flight. */
  cacheWritesDropped: number;
  /** Upload notices received over pub/sub (each may wake waiting downloads). */
  uploadNotices: number;
  /** Cross-instance locks taken, found held elsewhere, or skipped because Redis was unusable. */
  locksTaken: number;
  locksBusy: number;
  lockFallbacks: number;
}

export function newRedisStats(): RedisStats {
  return {
    commands: 0,
    failures: 0,
    timeouts: 0,
    skipped: 0,
    cacheHits: 0,
    cacheMisses: 0,
    cacheWrites: 0,
    cacheWritesDropped: 0,
    uploadNotices: 0,
    locksTaken: 0,
    locksBusy: 0,
    lockFallbacks: 0,
  };
}
