#!/usr/bin/env node
// heic-thumbnails: HEIC 4032x3024 (an iPhone photo's size) -> 320x240 thumbnails per second
// through our thumbnail pool (header read, fenced heif-convert to an intermediate JPEG, resize,
// encode), against the decoder alone in the same run: `heif-convert` of the same file to y4m
// (raw YUV, so no encode at all), as many at once as the pool has threads. Both sides run
// `--conversions` conversions, alternating `--reps` times; medians are compared (goal >= 0.8x).
// Peak RSS per conversion: the decoder's own (GNU time's maximum resident set), and the pool's
// whole process tree (node, its worker threads and the decoder children) above its idle RSS.
//
// Needs heif-enc and heif-convert (libheif-examples) and GNU time (/usr/bin/time).
// Standalone: node bench/heic-thumbnails.mjs [--conversions N] [--threads T] [--reps R];
// or through bench/run.mjs: npm run bench -- heic
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ROOT, ensureBuilt } from './lib/repo.mjs';
import { photoJpeg } from './lib/images.mjs';
import { startRssSampler, idleRss } from './lib/rss.mjs';
import { median, printTable, ratio, round, writeResult } from './lib/report.mjs';

export const HEIC_SCENARIOS = ['heic-4032x3024-320x240'];

const MiB = 1024 * 1024;
const LIMITS = {
  maxPixels: 32_000_000,
  maxFrames: 1000,
  maxAnimateSizeBytes: 10 * MiB,
  stillFrame: 0.5,
  types: ['image/heic', 'image/heif'],
};

function have(cmd, args) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
}

/** Runs `n` jobs, `c` at once; resolves with the seconds it took. */
async function timedParallel(n, c, job) {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) await job(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}

/** One decoder-alone conversion; resolves with its maximum RSS in bytes. */
function decodeAlone(input, out) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', 'heif-convert', '--quiet', input, out], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      rmSync(out, { force: true });
      if (code !== 0) return reject(new Error(`heif-convert failed: ${err}`));
      resolve(Number(err.trim().split('\n').pop()) * 1024);
    });
  });
}

export async function runHeicThumbnails(ctx) {
  if (!have('heif-enc', ['--version']) || !have('heif-convert', ['--help']) || !existsSync('/usr/bin/time')) {
    console.log('heic: skipped (needs heif-enc, heif-convert and /usr/bin/time)');
    return {};
  }
  const conversions = ctx.conversions ?? (ctx.smoke ? 2 : 8);
  const threads = ctx.threads || 2;
  const reps = Math.max(1, ctx.reps ?? (ctx.smoke ? 1 : 3));
  const dir = join(ctx.workDir, 'heic');
  mkdirSync(dir, { recursive: true });
  const input = join(dir, 'photo.heic');
  console.log('  encoding a 4032x3024 photo with heif-enc (x265: slow) …');
  writeFileSync(join(dir, 'photo.jpg'), await photoJpeg({ width: 4032, height: 3024, quality: 92 }));
  const enc = spawnSync('heif-enc', ['-q', '60', join(dir, 'photo.jpg'), '-o', input], { stdio: 'ignore' });
  if (enc.status !== 0) throw new Error('heif-enc failed');
  const heic = readFileSync(input);

  const { ThumbnailPools } = await import(pathToFileURL(join(ROOT, 'dist', 'src', 'pools', 'thumbnails.js')).href);
  const pools = new ThumbnailPools({ static: threads, animated: 1, blurhash: 1 }, 1024);
  const { decoders } = await pools.probe();
  const targets = [{ width: 320, height: 240, method: 'scale', animated: false }];
  const copy = async () => {
    const bytes = new Uint8Array(new ArrayBuffer(heic.length));
    bytes.set(heic);
    return bytes;
  };
  let output = null;
  const ours = async () => {
    const r = await pools.thumbnail(copy, targets, LIMITS, false);
    if (!r.ok) throw new Error(`thumbnail failed: ${r.code}: ${r.message}`);
    output = r.outputs[0];
  };
  await ours(); // warm: worker threads started, sandbox probed

  const alone = [];
  const pool = [];
  const decoderRss = [];
  let poolGrowth = 0;
  for (let r = 0; r < reps; r++) {
    alone.push(
      await timedParallel(conversions, threads, async (i) => {
        decoderRss.push(await decodeAlone(input, join(dir, `out-${i}.y4m`)));
      }),
    );
    const idle = await idleRss([process.pid]);
    const sampler = startRssSampler([process.pid]);
    pool.push(await timedParallel(conversions, threads, ours));
    const peak = (await sampler.stop()).peakBytes;
    poolGrowth = Math.max(poolGrowth, peak - idle);
    console.log(`  rep ${r + 1}: decoder alone ${round(alone[r], 2)} s, pool ${round(pool[r], 2)} s`);
  }
  await pools.close();
  // The decoder children are not in this process's RSS: the tree's peak is the pool's growth
  // plus the decoders' own peak, `threads` of them at once.
  const decoderPeak = Math.max(...decoderRss);
  const record = {
    conversions,
    threads,
    reps,
    sandbox: decoders.sandbox,
    heicBytes: heic.length,
    output: output && { width: output.width, height: output.height, type: output.contentType },
    decoderAloneSeconds: round(median(alone), 2),
    poolSeconds: round(median(pool), 2),
    decoderAlonePerSec: round(conversions / median(alone), 2),
    poolPerSec: round(conversions / median(pool), 2),
    ratio: ratio(median(alone), median(pool)),
    decoderPeakRssMiB: round(decoderPeak / MiB, 1),
    poolProcessGrowthMiB: round(poolGrowth / MiB, 1),
    peakRssPerConversionMiB: round((poolGrowth / threads + decoderPeak) / MiB, 1),
  };
  printTable(
    `heic (4032x3024 HEIC -> 320x240; ${threads} at once; baseline: heif-convert to y4m; goal ratio >= 0.8)`,
    ['scenario', 'alone/s', 'ours/s', 'ratio', 'decoder RSS MiB', 'pool growth MiB', 'per conversion MiB'],
    [
      [
        HEIC_SCENARIOS[0],
        record.decoderAlonePerSec,
        record.poolPerSec,
        record.ratio,
        record.decoderPeakRssMiB,
        record.poolProcessGrowthMiB,
        record.peakRssPerConversionMiB,
      ],
    ],
  );
  writeResult(HEIC_SCENARIOS[0], record, ctx.suffix ?? '');
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  return { [HEIC_SCENARIOS[0]]: record };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opt } = parseArgs({
    options: {
      conversions: { type: 'string' },
      threads: { type: 'string' },
      reps: { type: 'string' },
      smoke: { type: 'boolean', default: false },
    },
  });
  ensureBuilt();
  const workDir = join(tmpdir(), `media-repo-bench-heic-${process.pid}`);
  try {
    await runHeicThumbnails({
      workDir,
      smoke: opt.smoke,
      conversions: opt.conversions ? Number(opt.conversions) : undefined,
      threads: Number(opt.threads) || 0,
      reps: opt.reps ? Number(opt.reps) : undefined,
      suffix: opt.smoke ? 'smoke' : '',
    });
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.exit(0);
}
