import type { Bucket } from './bucket.js';

/** Everything one instance holds about one client (a user or an IP): its per-instance buckets,
 * always kept (they decide without Redis, and are warm when Redis goes away), and its share
 * of the Redis buckets. */
export interface ClientState {
  /** Redis key suffix and LRU key: `u:@user:server` or `ip:address`. */
  key: string;
  requests: Bucket;
  bytes: Bucket;
  /** Request tokens leased from the shared bucket, spendable here until leaseUntil. */
  lease: number;
  leaseUntil: number;
  /** The shared bucket said "empty" until then: answer 429 without asking again. */
  deniedUntil: number;
  /** The lease request in flight, if any (one per client at a time). */
  fetching: Promise<boolean> | null;
  /** The shared byte bucket as last seen (tokens at viewAt); viewAt 0 = not known. */
  view: number;
  viewAt: number;
  /** Bytes charged here and not yet sent to Redis. */
  pendingBytes: number;
}

export function newClientState(key: string, requests: Bucket, bytes: Bucket): ClientState {
  return {
    key,
    requests,
    bytes,
    lease: 0,
    leaseUntil: 0,
    deniedUntil: 0,
    fetching: null,
    view: 0,
    viewAt: 0,
    pendingBytes: 0,
  };
}
