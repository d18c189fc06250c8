import t from 'tap';
import { HashRing } from '../src/redis/hash-ring.js';

// Consistent hashing over shard names: an even split, and few keys move when a shard joins.

const KEYS = Array.from({ length: 10_000 }, (_, i) => `media:${i.toString(16).padStart(64, '0')}`);

t.test('two shards split the keys about evenly', async (t) => {
  const ring = new HashRing(['one', 'two']);
  const counts = new Map<string, number>();
  for (const k of KEYS) counts.set(ring.shardFor(k)!, (counts.get(ring.shardFor(k)!) ?? 0) + 1);
  t.same([...counts.keys()].sort(), ['one', 'two'], 'both shards own keys');
  for (const [name, n] of counts) t.ok(n > 4000 && n < 6000, `${name} owns ${n} of 10000 (40-60 %)`);
});

t.test('a key always maps to the same shard, whatever the order of the shard list', async (t) => {
  const a = new HashRing(['one', 'two']);
  const b = new HashRing(['two', 'one']);
  t.ok(KEYS.every((k) => a.shardFor(k) === b.shardFor(k)));
});

t.test('adding a third shard moves only about a third of the keys, all to it', async (t) => {
  const before = new HashRing(['one', 'two']);
  const after = new HashRing(['one', 'two', 'three']);
  let moved = 0;
  for (const k of KEYS) {
    const was = before.shardFor(k);
    const now = after.shardFor(k);
    if (was !== now) {
      moved++;
      if (now !== 'three') t.fail(`${k} moved between old shards (${was} -> ${now})`);
    }
  }
  t.ok(moved > 2300 && moved < 4300, `${moved} of 10000 keys moved (ideal 3333)`);
});

t.test('an empty ring owns nothing', async (t) => {
  t.equal(new HashRing([]).shardFor('x'), null);
});
