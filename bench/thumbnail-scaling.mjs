#!/usr/bin/env node
// Standalone thumbnail scaling bench: no server, no database. For each thread count T it runs,
// each in a fresh child process with UV_THREADPOOL_SIZE sized before libuv starts,
//   (a) ThumbnailPools from dist/src/pools/thumbnails.js, static pool of T threads, T*4 tasks in
//       flight (UV_THREADPOOL_SIZE = T + ceil(T/2) + ceil(T/4) + 4, as the launcher sets it);
//   (b) plain sharp, sharp.concurrency(1), T operations in flight (UV_THREADPOOL_SIZE = T + 4);
// both on the same 4000x3000 photo-like JPEG -> 320x240 (JPEG quality 80), for --seconds.
//
// Needs only node, dist/ (npx tsc -p .) and the production node_modules (sharp, @img/*, piscina,
// @napi-rs/image, lru-cache), plus bench/lib/images.mjs (imports only sharp). To run elsewhere:
//   tar czf thumb-scaling.tgz package.json dist node_modules bench/thumbnail-scaling.mjs bench/lib/images.mjs
//   node bench/thumbnail-scaling.mjs [--max 16] [--seconds 10] [--out FILE]
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';
import { photoJpeg, sharpLoop, percentile } from './lib/images.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const THREADS = [1, 2, 4, 8, 16];
const SIZE = { width: 320, height: 240 };

const USAGE = `usage: node bench/thumbnail-scaling.mjs [options]

  --max N        largest thread count of ${THREADS.join(', ')} to run (default: os.availableParallelism() = ${os.availableParallelism()})
  --threads LIST comma-separated thread counts instead (e.g. 1,3,6)
  --seconds S    seconds per measurement (default 10)
  --out FILE     results JSON (default bench/results/thumbnail-scaling.json)
  --uv N         force UV_THREADPOOL_SIZE=N in every child instead of sizing it (e.g. 4,
                 libuv's default, to show the plateau the launcher avoids)`;

const { values: opt } = parseArgs({
  options: {
    max: { type: 'string' },
    threads: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    uv: { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results', 'thumbnail-scaling.json') },
    child: { type: 'string' }, // internal: pool | sharp
    t: { type: 'string' },
    input: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

export const poolLibuvThreads = (t) => t + Math.ceil(t / 2) + Math.ceil(t / 4) + 4;
export const sharpLibuvThreads = (t) => t + 4;

const round = (x, d = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d;

/** Child (a): ThumbnailPools with `t` static threads and 4t tasks in flight. */
async function poolChild(t, input, seconds) {
  const { ThumbnailPools } = await import(pathToFileURL(join(ROOT, 'dist', 'src', 'pools', 'thumbnails.js')).href);
  const threads = { static: t, animated: Math.max(1, Math.ceil(t / 2)), blurhash: Math.max(1, Math.ceil(t / 4)) };
  const pools = new ThumbnailPools(threads, 1024);
  const { vips } = await pools.probe();
  const src = readFileSync(input);
  const limits = {
    maxPixels: 32_000_000,
    maxFrames: 1000,
    maxAnimateSizeBytes: 10 * 1024 * 1024,
    stillFrame: 0.5,
    types: ['image/jpeg', 'image/png', 'image/gif', 'image/webp'],
  };
  const targets = [{ ...SIZE, method: 'scale', animated: false }];
  let out = null;
  // The source is transferred to the worker, so each task gets its own copy, made once the pool
  // admits the task (as the server reads the blob then).
  const copy = async () => {
    const bytes = new Uint8Array(new ArrayBuffer(src.length));
    bytes.set(src);
    return bytes;
  };
  const one = async () => {
    const r = await pools.thumbnail(copy, targets, limits, false);
    if (!r.ok) throw new Error(`thumbnail failed: ${r.code}: ${r.message}`);
    out = r.outputs[0];
  };
  const inFlight = 4 * t;
  const run = async (until, count, lat) => {
    let started = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        for (;;) {
          if (count ? started >= count : performance.now() >= until) return;
          started++;
          const s = performance.now();
          await one();
          lat?.push(performance.now() - s);
        }
      }),
    );
  };
  // Warm-up: piscina starts threads on demand, and each thread loads sharp.
  await run(0, Math.max(2 * inFlight, 8));
  const lat = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(t0 + seconds * 1000, 0, lat);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stats = pools.stats();
  await pools.close();
  lat.sort((a, b) => a - b);
  if (out?.kind !== 'thumbnail' || out.width !== SIZE.width || out.height !== SIZE.height)
    throw new Error(`unexpected output ${JSON.stringify({ ...out, bytes: undefined })}`);
  return {
    kind: 'pool',
    threads,
    inFlight,
    done: lat.length,
    seconds: elapsed,
    perSec: lat.length / elapsed,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    cpuPct: ((cpu.user + cpu.system) / 1e6 / elapsed) * 100,
    outBytes: out.bytes.length,
    vips,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE,
    poolCompleted: stats.static.completed,
  };
}

if (opt.child) {
  const t = Number(opt.t);
  const seconds = Number(opt.seconds);
  const r =
    opt.child === 'pool'
      ? await poolChild(t, opt.input, seconds)
      : {
          kind: 'sharp',
          ...(await sharpLoop({ op: 'still', input: opt.input, concurrency: t, seconds, warmup: Math.max(2 * t, 4) })),
        };
  console.log(JSON.stringify(r));
  process.exit(0);
}

if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

const children = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

function runChild(kind, t, input, seconds) {
  const uv = opt.uv ? Number(opt.uv) : kind === 'pool' ? poolLibuvThreads(t) : sharpLibuvThreads(t);
  return new Promise((resolveRun, reject) => {
    const c = spawn(
      process.execPath,
      [
        fileURLToPath(import.meta.url),
        '--child',
        kind,
        '--t',
        String(t),
        '--input',
        input,
        '--seconds',
        String(seconds),
      ],
      {
        env: { ...process.env, UV_THREADPOOL_SIZE: String(uv) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.add(c);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('error', reject);
    c.on('exit', (code) => {
      children.delete(c);
      const line = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      if (code !== 0 || !line) return reject(new Error(`${kind} child (T=${t}) exited ${code}:\n${out.slice(-3000)}`));
      resolveRun({ ...JSON.parse(line), libuvThreads: uv });
    });
  });
}

const max = Number(opt.max) || os.availableParallelism();
const counts = opt.threads
  ? opt.threads
      .split(',')
      .map(Number)
      .filter((x) => x > 0)
  : THREADS.filter((t) => t <= max);
const seconds = Math.max(1, Number(opt.seconds) || 10);
const machine = {
  cpus: os.cpus().length,
  availableParallelism: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model ?? null,
  memGiB: round(os.totalmem() / 2 ** 30, 1),
  node: process.version,
  kernel: os.release(),
  loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
};
console.log(
  `thumbnail scaling: ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, load average ${machine.loadavgAtStart.join(' ')}`,
);
console.log(
  `thread counts ${counts.join(', ')}; ${seconds} s per measurement; 4000x3000 JPEG -> ${SIZE.width}x${SIZE.height} JPEG q80`,
);

const dir = mkdtempSync(join(os.tmpdir(), 'thumb-scaling-'));
const rows = [];
try {
  const jpeg = await photoJpeg();
  const input = join(dir, 'photo.jpg');
  writeFileSync(input, jpeg);
  console.log(`source: ${jpeg.length} bytes`);
  for (const [i, t] of counts.entries()) {
    // Alternate which side runs first, so neither always gets the cooler machine.
    const kinds = i % 2 ? ['sharp', 'pool'] : ['pool', 'sharp'];
    const r = {};
    for (const k of kinds) {
      r[k] = await runChild(k, t, input, seconds);
      console.log(
        `  T=${t} ${k === 'pool' ? 'ThumbnailPools' : 'plain sharp'} (UV_THREADPOOL_SIZE=${r[k].libuvThreads}${k === 'pool' ? `, ${r[k].inFlight} in flight` : `, ${t} in flight`}): ` +
          `${round(r[k].perSec, 1)}/s, p50 ${round(r[k].p50Ms, 0)} ms, CPU ${round(r[k].cpuPct, 0)}%`,
      );
    }
    rows.push({ threads: t, pool: r.pool, sharp: r.sharp });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const base = rows.find((r) => r.threads === 1) ?? rows[0];
const table = rows.map((r) => ({
  threads: r.threads,
  poolPerSec: round(r.pool.perSec, 1),
  sharpPerSec: round(r.sharp.perSec, 1),
  ratio: round(r.pool.perSec / r.sharp.perSec, 2),
  poolScaling: round(r.pool.perSec / base.pool.perSec, 2),
  sharpScaling: round(r.sharp.perSec / base.sharp.perSec, 2),
  poolCpuPct: round(r.pool.cpuPct, 0),
  sharpCpuPct: round(r.sharp.cpuPct, 0),
}));
const md = [
  `| threads | pool/s | sharp/s | ratio pool/sharp | pool scaling vs T=${base.threads} | sharp scaling vs T=${base.threads} | pool CPU % | sharp CPU % |`,
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...table.map(
    (x) =>
      `| ${x.threads} | ${x.poolPerSec} | ${x.sharpPerSec} | ${x.ratio} | ${x.poolScaling} | ${x.sharpScaling} | ${x.poolCpuPct} | ${x.sharpCpuPct} |`,
  ),
].join('\n');
console.log(`\n${md}\n`);
console.log(
  `${machine.cpus} cores (${machine.cpuModel}), ${seconds} s per measurement, each in a fresh child process; CPU % = all threads of the child (100 = one core).`,
);
const outFile = resolve(opt.out);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify({ scenario: 'thumbnail-scaling', date: new Date().toISOString(), machine, seconds, table, runs: rows, markdown: md }, null, 2)}\n`,
);
console.log(`wrote ${outFile}`);
