import { createHash } from 'node:crypto';

/** Points per shard on the ring: enough that 2-3 shards split keys within a few percent. */
export const VIRTUAL_NODES = 160;

function point(s: string): number {
  return createHash('md5').update(s).digest().readUInt32BE(0);
}

// Consistent hashing: each shard owns the arcs before its virtual nodes, so adding a shard only
// moves the keys that land on its new arcs (about 1/n of them) instead of reshuffling all.
// Shards are placed by name, not address, so moving a shard to a new host keeps its keys.
export class HashRing {
  private readonly points: number[] = [];
  private readonly owners: string[] = [];

  constructor(names: readonly string[]) {
    const all: { p: number; name: string }[] = [];
    for (const name of names) for (let i = 0; i < VIRTUAL_NODES; i++) all.push({ p: point(`${name}#${i}`), name });
    all.sort((a, b) => a.p - b.p || (a.name < b.name ? -1 : 1));
    for (const { p, name } of all) {
      this.points.push(p);
      this.owners.push(name);
    }
  }

  /** The shard that owns `key`, or null on an empty ring. */
  shardFor(key: string): string | null {
    if (this.points.length === 0) return null;
    const h = point(key);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === this.points.length ? 0 : lo]!;
  }
}
