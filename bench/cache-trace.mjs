// Trace-driven comparison of in-process cache policies, simulated without HTTP: a synthetic
// download trace (Zipf popularity, a Matrix-like size mix, room bursts) is fed to MMR's policy
// (our BlobCache from dist/, on a simulated clock), a plain byte-bounded LRU that admits every
// blob, and no cache, at a few cache sizes. Reports the request hit ratio, the share of bytes
// served from memory, and the extra datastore reads admissions cost (MMR's policy admits on a
// later download than the one that read the blob, so a fill of a large blob is a second read).
//
//   node bench/cache-trace.mjs [--objects 20000] [--downloads 500000] [--hours 6] [--seed 1]
import { LRUCache } from 'lru-cache';
import { BlobCache } from '../dist/src/cache/blob-cache.js';
import { printTable, round } from './lib/report.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const OBJECTS = Number(args.objects ?? 20_000);
const DOWNLOADS = Number(args.downloads ?? 500_000);
const HOURS = Number(args.hours ?? 6);
const ZIPF_S = Number(args.zipf ?? 1.0);
let seed = Number(args.seed ?? 1);
const KB = 1000;
const MiB = 1024 * 1024;

// Small deterministic PRNG (mulberry32) so every policy sees the same trace, run to run.
function rnd() {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const between = (lo, hi) => Math.round(lo + (hi - lo) * rnd());
const expo = (mean) => -Math.log(1 - rnd()) * mean;

// Size mix: what a chat media repo stores. Stickers are reused across rooms for hours (no
// burst); everything else is posted once and read in a burst that decays.
const KINDS = [
  { kind: 'sticker', share: 0.25, size: () => between(20 * KB, 100 * KB), burst: false },
  { kind: 'screenshot', share: 0.25, size: () => between(100 * KB, 500 * KB), burst: true },
  { kind: 'photo', share: 0.4, size: () => between(200 * KB, 3000 * KB), burst: true },
  { kind: 'video', share: 0.1, size: () => between(5 * 1000 * KB, 50 * 1000 * KB), burst: true },
];
function pickKind() {
  let x = rnd();
  for (const k of KINDS) if ((x -= k.share) < 0) return k;
  return KINDS[0];
}

function makeTrace() {
  const endMs = HOURS * 3600_000;
  const objects = Array.from({ length: OBJECTS }, (_, i) => ({ key: `o${i}`, ...pickKind(), postedAt: rnd() * endMs }));
  for (const o of objects) o.bytes = o.size();
  // Zipf popularity by a random rank: a few blobs get most downloads.
  const order = objects.map((_, i) => i).sort(() => rnd() - 0.5);
  let h = 0;
  for (let r = 1; r <= OBJECTS; r++) h += 1 / r ** ZIPF_S;
  const events = [];
  order.forEach((idx, r) => {
    const o = objects[idx];
    const n = Math.max(1, Math.round((DOWNLOADS * (1 / (r + 1) ** ZIPF_S)) / h));
    for (let i = 0; i < n; i++) {
      // Bursts: most clients fetch within minutes of the post (mean 3 min), a tail over the
      // next hour (scrollback, late joiners). Stickers: any time after posting.
      const at = !o.burst
        ? o.postedAt + rnd() * (endMs - o.postedAt)
        : o.postedAt + (rnd() < 0.8 ? expo(3 * 60_000) : expo(60 * 60_000));
      if (at < endMs) events.push({ at, o });
    }
  });
  events.sort((a, b) => a.at - b.at);
  return { events, objects };
}

/** A stand-in for a blob's bytes: the cache only reads its length (no GiBs allocated). */
const fakeBytes = (n) => ({ length: n, byteOffset: 0, buffer: { byteLength: n } });

function runMmr(events, cacheBytes, over = {}) {
  const clock = { t: 0 };
  const cache = new BlobCache({
    enabled: true,
    maxSizeBytes: cacheBytes,
    maxFileSizeBytes: 100 * MiB,
    trackedMinutes: 30,
    minDownloads: 5,
    minCacheTimeSeconds: 300,
    minEvictedTimeSeconds: 60,
    now: () => clock.t,
    ...over,
  });
  const s = { hits: 0, hitBytes: 0, fillBytes: 0, peak: 0 };
  for (const { at, o } of events) {
    clock.t = at;
    const r = cache.lookup(o.key, o.bytes);
    if (r.hit) {
      s.hits++;
      s.hitBytes += o.bytes;
    } else if (r.admit && cache.offer(o.key, fakeBytes(o.bytes))) {
      // Blobs up to smallFileBytes (64 KiB) are read whole by the request itself.
      if (o.bytes > 64 * 1024) s.fillBytes += o.bytes;
    }
    s.peak = Math.max(s.peak, cache.usedBytes);
  }
  return s;
}

function runLru(events, cacheBytes) {
  const lru = new LRUCache({
    maxSize: cacheBytes,
    maxEntrySize: Math.min(cacheBytes, 100 * MiB),
    sizeCalculation: (n) => n,
  });
  const s = { hits: 0, hitBytes: 0, fillBytes: 0, peak: 0 };
  for (const { o } of events) {
    if (lru.get(o.key) !== undefined) {
      s.hits++;
      s.hitBytes += o.bytes;
    } else lru.set(o.key, o.bytes); // the bytes this miss read anyway: no extra read
    s.peak = Math.max(s.peak, lru.calculatedSize);
  }
  return s;
}

const { events, objects } = makeTrace();
const totalBytes = events.reduce((a, e) => a + e.o.bytes, 0);
const storedBytes = objects.reduce((a, o) => a + o.bytes, 0);
console.log(
  `trace: ${objects.length} blobs (${round(storedBytes / 1e9, 1)} GB stored), ${events.length} downloads (${round(totalBytes / 1e9, 1)} GB) over ${HOURS} h, Zipf s=${ZIPF_S}, seed ${args.seed ?? 1}`,
);
for (const k of KINDS) {
  const ev = events.filter((e) => e.o.kind === k.kind);
  console.log(
    `  ${k.kind}: ${objects.filter((o) => o.kind === k.kind).length} blobs, ${round((100 * ev.length) / events.length, 0)}% of downloads, ${round((100 * ev.reduce((a, e) => a + e.o.bytes, 0)) / totalBytes, 0)}% of bytes`,
  );
}

const POLICIES = [
  ['none', () => ({ hits: 0, hitBytes: 0, fillBytes: 0, peak: 0 })],
  ['lru (admit all)', (c) => runLru(events, c)],
  ['mmr (minDownloads 5, minCache 300 s)', (c) => runMmr(events, c)],
  ['mmr minDownloads 2', (c) => runMmr(events, c, { minDownloads: 2 })],
  ['mmr minDownloads 3', (c) => runMmr(events, c, { minDownloads: 3 })],
  ['mmr minDownloads 3, minCache 60 s', (c) => runMmr(events, c, { minDownloads: 3, minCacheTimeSeconds: 60 })],
  ['mmr minDownloads 5, maxFile 10 MiB', (c) => runMmr(events, c, { maxFileSizeBytes: 10 * MiB })],
  ['mmr minDownloads 3, maxFile 10 MiB', (c) => runMmr(events, c, { minDownloads: 3, maxFileSizeBytes: 10 * MiB })],
];
const SIZES = (args.sizes ?? '64,256,1024').split(',').map((m) => Number(m) * MiB);
for (const size of SIZES) {
  const rows = POLICIES.map(([name, run]) => {
    const t0 = performance.now();
    const s = run(size);
    const ms = performance.now() - t0;
    if (s.peak > size) throw new Error(`${name}: peak ${s.peak} above ${size}`);
    return [
      name,
      `${round((100 * s.hits) / events.length, 1)}%`,
      `${round((100 * s.hitBytes) / totalBytes, 1)}%`,
      `${round(s.hitBytes / 1e9, 1)}`,
      `${round(s.fillBytes / 1e9, 2)}`,
      `${round((1e6 * ms) / events.length, 2)}`,
    ];
  });
  printTable(
    `cache ${size / MiB} MiB`,
    ['policy', 'hit ratio', 'bytes from memory', 'GB from memory', 'extra fill reads GB', 'ns/download (sim)'],
    rows,
  );
}
