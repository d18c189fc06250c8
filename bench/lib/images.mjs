// Image fixtures for the thumbnail benches, and the plain-sharp baseline loop they compare with.
// Imports only sharp and node builtins (no dev dependencies), so the standalone scripts
// (bench/thumbnail-scaling.mjs, bench/image-libs.mjs) can use it on a machine that has only
// node, dist/ and the production node_modules.
//
// Run as a script it is the baseline child process:
//   UV_THREADPOOL_SIZE=N node bench/lib/images.mjs sharp-loop '<json spec>'
// prints one JSON line with the result (see sharpLoop).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

/** Deterministic PRNG (mulberry32): the same fixture bytes on every run and machine. */
export function prng(seed = 1) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random RGB noise of w×h, resized (bicubic) to width×height: smooth blobs of that scale. */
async function smoothNoise(rand, w, h, width, height) {
  const small = Buffer.allocUnsafe(w * h * 3);
  for (let i = 0; i < small.length; i++) small[i] = Math.floor(rand() * 256);
  return sharp(small, { raw: { width: w, height: h, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
}

/**
 * Photo-like RGB pixels: large smooth colour areas (sky/objects), mid-scale texture, a
 * diagonal lighting gradient and fine sensor-like grain. At JPEG quality 90 a 4000x3000
 * image of this compresses to about 3 MB, as a camera photo does.
 */
export async function photoRaw(width, height, { seed = 7, grain = 12 } = {}) {
  const rand = prng(seed);
  const low = await smoothNoise(
    rand,
    Math.max(2, Math.round(width / 500)),
    Math.max(2, Math.round(height / 500)),
    width,
    height,
  );
  const mid = await smoothNoise(
    rand,
    Math.max(2, Math.round(width / 40)),
    Math.max(2, Math.round(height / 40)),
    width,
    height,
  );
  const fine = await smoothNoise(
    rand,
    Math.max(2, Math.round(width / 6)),
    Math.max(2, Math.round(height / 6)),
    width,
    height,
  );
  const out = Buffer.allocUnsafe(width * height * 3);
  let i = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const light = 40 * (x / width + y / height - 1); // -40 .. +40 across the frame
      for (let c = 0; c < 3; c++, i++) {
        const v = 0.6 * low[i] + 0.25 * mid[i] + 0.15 * fine[i] + light + (rand() - 0.5) * grain;
        out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

/** A photo-like JPEG (default 4000x3000, quality 90: about 3 MB). */
export async function photoJpeg({ width = 4000, height = 3000, quality = 90, seed = 7 } = {}) {
  const raw = await photoRaw(width, height, { seed });
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}

/**
 * An animated GIF like a short clip: a photo-like scene panning by a few pixels per frame
 * with a bright disc crossing it. Default 480x270, 100 frames, 40 ms each, looping: about 6 MB.
 */
export async function animatedGif({ width = 480, height = 270, frames = 100, seed = 11 } = {}) {
  const pan = 3;
  const sceneW = width + pan * frames;
  const scene = await photoRaw(sceneW, height, { seed, grain: 0 });
  const frame = width * height * 3;
  const pages = Buffer.allocUnsafe(frame * frames);
  const r = Math.round(height / 6);
  for (let f = 0; f < frames; f++) {
    const cx = Math.round((f / frames) * (width + 2 * r)) - r;
    const cy = Math.round(height / 2 + (height / 4) * Math.sin((f / frames) * 2 * Math.PI));
    for (let y = 0; y < height; y++) {
      const src = (y * sceneW + f * pan) * 3;
      const dst = f * frame + y * width * 3;
      scene.copy(pages, dst, src, src + width * 3);
      const dy = y - cy;
      if (dy * dy > r * r) continue;
      const dx = Math.floor(Math.sqrt(r * r - dy * dy));
      for (let x = Math.max(0, cx - dx); x < Math.min(width, cx + dx); x++) {
        pages[dst + x * 3] = 250;
        pages[dst + x * 3 + 1] = 220;
        pages[dst + x * 3 + 2] = 40;
      }
    }
  }
  return sharp(pages, { raw: { width, height: height * frames, channels: 3, pageHeight: height } })
    .gif({ delay: new Array(frames).fill(40), loop: 0, effort: 1, dither: 0 })
    .toBuffer();
}

/**
 * Screenshot-like RGB pixels: flat UI panels, a title bar, a sidebar, buttons and lines of
 * 1-pixel "text" glyphs (random 5x7 bitmaps) with hard edges and a handful of colours.
 */
export function screenshotRaw(width = 1920, height = 1080, { seed = 3 } = {}) {
  const rand = prng(seed);
  const px = Buffer.alloc(width * height * 3);
  const rect = (x0, y0, w, h, [r, g, b]) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x0 + w); x++) {
        const i = (y * width + x) * 3;
        px[i] = r;
        px[i + 1] = g;
        px[i + 2] = b;
      }
    }
  };
  const glyphs = Array.from({ length: 64 }, () => Array.from({ length: 35 }, () => rand() < 0.42));
  const text = (x0, y0, maxW, lines, colour) => {
    for (let l = 0; l < lines; l++) {
      let x = x0;
      const end = x0 + Math.floor(maxW * (0.5 + rand() * 0.5));
      while (x + 6 < end) {
        if (rand() < 0.16) {
          x += 6;
          continue;
        } // a space
        const g = glyphs[Math.floor(rand() * glyphs.length)];
        for (let gy = 0; gy < 7; gy++)
          for (let gx = 0; gx < 5; gx++) if (g[gy * 5 + gx]) rect(x + gx, y0 + l * 14 + gy, 1, 1, colour);
        x += 6;
      }
    }
  };
  rect(0, 0, width, height, [236, 239, 243]); // desktop
  rect(0, 0, width, 36, [45, 49, 58]); // title bar
  text(16, 14, 300, 1, [230, 230, 230]);
  rect(0, 36, 280, height - 36, [250, 250, 252]); // sidebar
  for (let i = 0; i < 24; i++) {
    if (i === 3) rect(0, 48 + i * 34, 280, 32, [210, 225, 250]);
    rect(
      16,
      58 + i * 34,
      12,
      12,
      [
        [66, 133, 244],
        [52, 168, 83],
        [251, 188, 5],
        [234, 67, 53],
      ][i % 4],
    );
    text(40, 60 + i * 34, 200, 1, [40, 40, 40]);
  }
  rect(280, 36, 1, height - 36, [200, 200, 205]);
  rect(300, 56, width - 320, height - 76, [255, 255, 255]); // main pane
  for (let b = 0; b < 5; b++) {
    rect(320 + b * 130, 72, 120, 30, b === 0 ? [26, 115, 232] : [241, 243, 244]);
    text(332 + b * 130, 84, 90, 1, b === 0 ? [255, 255, 255] : [60, 64, 67]);
  }
  for (let p = 0; p < 6; p++) {
    text(320, 130 + p * 150, width - 420, 8, [32, 33, 36]);
    rect(320, 130 + p * 150 + 124, width - 360, 1, [218, 220, 224]);
  }
  return px;
}

/** 24-bit uncompressed BMP (BITMAPINFOHEADER, bottom-up rows, BGR, rows padded to 4 bytes). */
export function encodeBmp24(rgb, width, height) {
  const stride = (width * 3 + 3) & ~3;
  const size = 54 + stride * height;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10); // pixel data offset
  b.writeUInt32LE(40, 14); // BITMAPINFOHEADER
  b.writeInt32LE(width, 18);
  b.writeInt32LE(height, 22); // positive: bottom-up
  b.writeUInt16LE(1, 26); // planes
  b.writeUInt16LE(24, 28); // bits per pixel
  b.writeUInt32LE(0, 30); // BI_RGB
  b.writeUInt32LE(stride * height, 34);
  b.writeInt32LE(2835, 38); // 72 dpi
  b.writeInt32LE(2835, 42);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const d = row + x * 3;
      b[d] = rgb[s + 2];
      b[d + 1] = rgb[s + 1];
      b[d + 2] = rgb[s];
    }
  }
  return b;
}

export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function vmRssBytes() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? Number(m[1]) * 1024 : null;
}

/** The plain-sharp operations the server's output is compared with. */
export const SHARP_OPS = {
  // Still: what render.ts does for a JPEG source, minus our header checks and pools.
  still: (input) =>
    sharp(input).resize(320, 240, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true }),
  // Animated: what render.ts does for a GIF with animated=true.
  animated: (input) =>
    sharp(input, { animated: true })
      .resize(320, 180)
      .webp({ quality: 75, effort: 2 })
      .toBuffer({ resolveWithObject: true }),
};

/**
 * Plain sharp in this process: `concurrency` loops running SHARP_OPS[op], for `seconds` (or
 * `count` operations in all), after `warmup` untimed ones. Input: `input` (a file path) read
 * once, or again for every operation with `readEach` (as the server reads the blob). With
 * `sampleRss`, VmRSS is sampled every 10 ms from this (idle) event loop. Returns
 * { done, seconds, perSec, p50Ms, p99Ms, meanMs, cpuPct (100 = one core, all threads), outBytes, outWidth,
 * outHeight, idleRssBytes, peakRssBytes, ... }.
 */
export async function sharpLoop({
  op = 'still',
  input,
  readEach = false,
  concurrency = 1,
  seconds = 10,
  count = 0,
  warmup = 0,
  sampleRss = false,
  vipsConcurrency = 1,
}) {
  sharp.concurrency(vipsConcurrency);
  sharp.cache(false);
  const fn = SHARP_OPS[op];
  if (!fn) throw new Error(`unknown op ${op}`);
  const once = readFileSync(input);
  const source = () => (readEach ? readFile(input) : once);
  for (let i = 0; i < warmup; i++) await fn(await source());
  let idle = null;
  let peak = 0;
  let timer = null;
  if (sampleRss) {
    idle = vmRssBytes();
    peak = idle;
    timer = setInterval(() => {
      peak = Math.max(peak, vmRssBytes() ?? 0);
    }, 10);
  }
  const lat = [];
  let last = null;
  let started = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const loop = async () => {
    for (;;) {
      if (count ? started >= count : performance.now() >= deadline) return;
      started++;
      const s = performance.now();
      last = await fn(await source());
      lat.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (timer) {
    clearInterval(timer);
    peak = Math.max(peak, vmRssBytes() ?? 0);
  }
  lat.sort((a, b) => a - b);
  return {
    op,
    concurrency,
    readEach,
    done: lat.length,
    seconds: elapsed,
    perSec: lat.length / elapsed,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    meanMs: lat.reduce((a, b) => a + b, 0) / (lat.length || 1),
    outBytes: last?.data.length ?? null,
    outWidth: last?.info.width ?? null,
    outHeight: last?.info.pageHeight ?? last?.info.height ?? null,
    outPages: last?.info.pages ?? null,
    cpuPct: ((cpu.user + cpu.system) / 1e6 / elapsed) * 100,
    idleRssBytes: idle,
    peakRssBytes: sampleRss ? peak : null,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? null,
    vips: sharp.versions.vips,
    sharpConcurrency: sharp.concurrency(),
  };
}

/** The command line that runs sharpLoop(spec) in a child process (spawn it with your env). */
export function sharpLoopArgs(spec) {
  return [fileURLToPath(import.meta.url), 'sharp-loop', JSON.stringify(spec)];
}

/** The JSON result line a sharp-loop child printed (its last line starting with '{'). */
export function parseChildResult(output) {
  const line = output
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`the child printed no result:\n${output.slice(-2000)}`);
  return JSON.parse(line);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] !== 'sharp-loop') {
    console.error("usage: UV_THREADPOOL_SIZE=N node bench/lib/images.mjs sharp-loop '<json spec>'");
    process.exit(2);
  }
  const r = await sharpLoop(JSON.parse(process.argv[3]));
  console.log(JSON.stringify(r));
}
