import type { RateLimitSection } from '../config/schema.js';
import { IpRangeList } from '../net/ip-ranges.js';
import type { BucketParams } from './bucket.js';

/** What the limiter derives from one rateLimit section; rebuilt when a reload replaces it. */
export interface LimitParams {
  requests: BucketParams;
  bytes: BucketParams;
  exemptCidrs: IpRangeList;
  exemptUsers: RegExp | null;
  /** How long an idle client's buckets are kept: until both would be full again anyway. */
  idleMs: number;
}

/** `*` any run of characters, `?` one; everything else literal (MMR's quota globs). */
export function globToRegExp(globs: readonly string[]): RegExp | null {
  if (globs.length === 0) return null;
  const one = (g: string) =>
    g
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
  return new RegExp(`^(?:${globs.map(one).join('|')})$`);
}

export function limitParams(c: RateLimitSection): LimitParams {
  const d = c.buckets.downloads;
  const requests = { capacity: c.burst, perMs: c.requestsPerSecond / 1000, floor: 0 };
  const bytes = { capacity: d.capacityBytes, perMs: d.drainBytesPerMinute / 60_000, floor: -d.overflowLimitBytes };
  const refillMs = (p: BucketParams) => (p.perMs > 0 ? (p.capacity - p.floor) / p.perMs : Infinity);
  return {
    requests,
    bytes,
    exemptCidrs: IpRangeList.parse(c.exempt.cidrs),
    exemptUsers: globToRegExp(c.exempt.users),
    idleMs: Math.min(3 * 3_600_000, Math.max(60_000, refillMs(requests), refillMs(bytes))),
  };
}
