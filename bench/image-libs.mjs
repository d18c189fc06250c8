#!/usr/bin/env node
// Standalone: what is @napi-rs/image for, next to sharp? Two questions, each timed as the median
// of --reps runs (after one warm-up) on one thread of work at a time, sharp.concurrency(1) as in
// our thumbnail workers:
//   1. BMP: a 1920x1080 24-bit BMP to a 320x240 (fit inside) PNG thumbnail. sharp's libvips has
//      no BMP loader; @napi-rs/image decodes it (Transformer.rawPixels) and sharp resizes/encodes.
//   2. PNG size: a screenshot-like 1920x1080 PNG (hard edges, few colours) to an 800x600 (fit
//      inside) PNG: sharp png compressionLevel 6 (what we serve), sharp palette PNG, our PNG
//      run through @napi-rs/image pngQuantize / losslessCompressPng, and @napi-rs/image alone.
// Needs only node and the production node_modules (sharp, @napi-rs/image) and bench/lib/images.mjs.
//   node bench/image-libs.mjs [--reps 10] [--out FILE]
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import sharp from 'sharp';
import * as napi from '@napi-rs/image';
import { photoRaw, screenshotRaw, encodeBmp24 } from './lib/images.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    reps: { type: 'string', default: '10' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results', 'image-libs.json') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log('usage: node bench/image-libs.mjs [--reps 10] [--out bench/results/image-libs.json]');
  process.exit(0);
}
const REPS = Math.max(1, Number(opt.reps) || 10);

sharp.concurrency(1);
sharp.cache(false);

const round = (x, d = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d;
const med = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * Runs `fn` (async, returns a Buffer) once to warm up and REPS times measured; resolves
 * { ok, bytes, ms (median wall), cpuMs (median process CPU: all threads), out } or { ok: false, error }.
 */
async function measure(fn) {
  let out;
  try {
    out = await fn();
  } catch (e) {
    return { ok: false, error: e.message.split('\n')[0] };
  }
  const wall = [];
  const cpu = [];
  for (let i = 0; i < REPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    out = await fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { ok: true, bytes: out.length, ms: round(med(wall), 1), cpuMs: round(med(cpu), 1), out };
}

/** PSNR (dB) of a PNG against a reference PNG of the same size (Infinity when identical). */
async function psnr(png, refPng) {
  const a = await sharp(png).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const b = await sharp(refPng).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (a.info.width !== b.info.width || a.info.height !== b.info.height || a.data.length !== b.data.length) return null;
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i] - b.data[i];
    se += d * d;
  }
  const mse = se / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

async function dims(png) {
  const m = await sharp(png).metadata();
  return `${m.width}x${m.height}`;
}

const fmtPsnr = (p) => (p === null || p === undefined ? '–' : p === Infinity ? 'lossless' : `${round(p, 1)} dB`);

console.log(
  `image libraries: sharp ${sharp.versions.sharp ?? ''} (libvips ${sharp.versions.vips}), @napi-rs/image; ` +
    `${os.cpus().length} cores (${os.cpus()[0]?.model}), node ${process.version}, load average ${os
      .loadavg()
      .map((x) => round(x, 2))
      .join(' ')}; median of ${REPS}`,
);

// 1. BMP -> 320x240 PNG thumbnail.
const W = 1920;
const H = 1080;
const bmp = encodeBmp24(await photoRaw(W, H), W, H);
console.log(`\n1. 1920x1080 24-bit BMP (${bmp.length} bytes) -> 320x240 (fit inside) PNG, compressionLevel 6`);
const thumbPng = (img) => img.resize(320, 240, { fit: 'inside' }).png({ compressionLevel: 6 }).toBuffer();
let channels = null;
const bmpRows = [];
bmpRows.push({ name: 'sharp alone', ...(await measure(() => thumbPng(sharp(bmp)))) });
bmpRows.push({
  name: '@napi-rs/image decode (Transformer.rawPixels) only',
  ...(await measure(async () => new napi.Transformer(bmp).rawPixels())),
});
bmpRows.push({
  name: '@napi-rs/image decode + sharp resize/PNG',
  ...(await measure(async () => {
    const raw = await new napi.Transformer(bmp).rawPixels();
    channels = raw.length / (W * H);
    return thumbPng(sharp(raw, { raw: { width: W, height: H, channels } }));
  })),
});
bmpRows.push({
  name: '@napi-rs/image alone (resize Lanczos3 inside + png)',
  ...(await measure(() =>
    new napi.Transformer(bmp).resize(320, 240, napi.ResizeFilterType.Lanczos3, napi.ResizeFit.Inside).png(),
  )),
});
for (const r of bmpRows)
  if (r.ok && r.name !== '@napi-rs/image decode (Transformer.rawPixels) only') r.dims = await dims(r.out);
console.log(
  `   rawPixels gave ${channels} channels per pixel (${channels === 3 ? 'RGB' : channels === 4 ? 'RGBA' : '?'})`,
);
const md1 = [
  '| BMP 1920x1080 -> 320x240 PNG | result | output | bytes | ms (wall) | CPU ms |',
  '| --- | --- | --- | ---: | ---: | ---: |',
  ...bmpRows.map((r) =>
    r.ok
      ? `| ${r.name} | ok | ${r.dims ?? `${r.bytes} raw bytes`} | ${r.bytes} | ${r.ms} | ${r.cpuMs} |`
      : `| ${r.name} | **fails**: ${r.error} | – | – | – | – |`,
  ),
].join('\n');
console.log(`\n${md1}`);

// 2. Screenshot -> 800x600 PNG: sizes and times.
const shotRaw = screenshotRaw(W, H);
const shotPng = await sharp(shotRaw, { raw: { width: W, height: H, channels: 3 } })
  .png({ compressionLevel: 6 })
  .toBuffer();
console.log(`\n2. screenshot-like 1920x1080 PNG (${shotPng.length} bytes) -> 800x600 (fit inside) PNG`);
const resized = () => sharp(shotPng).resize(800, 600, { fit: 'inside' });
const ours = await measure(() => resized().png({ compressionLevel: 6 }).toBuffer());
const pngRows = [{ name: 'sharp png compressionLevel 6 (what we serve)', ...ours }];
pngRows.push({
  name: 'sharp png palette: true (quality 100, 256 colours, effort 7)',
  ...(await measure(() => resized().png({ palette: true }).toBuffer())),
});
pngRows.push({
  name: 'sharp png palette: true, effort 1',
  ...(await measure(() => resized().png({ palette: true, effort: 1 }).toBuffer())),
});
// The post-processing steps are timed on their own, on our output; "total" adds ours.
const quant = await measure(() => napi.pngQuantize(ours.out));
pngRows.push({ name: '+ @napi-rs/image pngQuantize (defaults) on our PNG', ...quant, extraMs: quant.ms });
const lossless = await measure(() => napi.losslessCompressPng(ours.out));
pngRows.push({ name: '+ @napi-rs/image losslessCompressPng (defaults) on our PNG', ...lossless, extraMs: lossless.ms });
pngRows.push({
  name: '@napi-rs/image alone (decode, resize Lanczos3 inside, png)',
  ...(await measure(() =>
    new napi.Transformer(shotPng).resize(800, 600, napi.ResizeFilterType.Lanczos3, napi.ResizeFit.Inside).png(),
  )),
});
for (const r of pngRows) {
  if (!r.ok) continue;
  r.dims = await dims(r.out);
  r.psnr = await psnr(r.out, ours.out);
  r.totalMs = r.extraMs !== undefined ? round(ours.ms + r.extraMs, 1) : r.ms;
  r.sizeRatio = round(r.bytes / ours.bytes, 2);
}
const md2 = [
  '| screenshot 1920x1080 -> 800x600 PNG | output | bytes | size vs ours | ms (wall) | total ms | CPU ms | PSNR vs ours |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...pngRows.map((r) =>
    r.ok
      ? `| ${r.name} | ${r.dims} | ${r.bytes} | ${r.sizeRatio} | ${r.ms} | ${r.totalMs} | ${r.cpuMs} | ${fmtPsnr(r.psnr)} |`
      : `| ${r.name} | **fails**: ${r.error} | – | – | – | – | – | – |`,
  ),
].join('\n');
console.log(`\n${md2}`);
console.log(
  '\nms = median wall time of one operation; "+" rows time only the step on our PNG, total adds ours. ' +
    'CPU ms counts every thread of this process (sharp.concurrency(1); @napi-rs/image may use more threads). ' +
    'PSNR is against our output: quantizers lose detail; @napi-rs/image alone differs mostly by its resampling filter.',
);

const strip = ({ out, ...r }) => ({ ...r, psnr: r.psnr === Infinity ? 'lossless' : round(r.psnr ?? null, 2) });
const outFile = resolve(opt.out);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      scenario: 'image-libs',
      date: new Date().toISOString(),
      reps: REPS,
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        node: process.version,
        vips: sharp.versions.vips,
        loadavg: os.loadavg(),
      },
      bmp: {
        width: W,
        height: H,
        bytes: bmp.length,
        rawPixelsChannels: channels,
        rows: bmpRows.map(strip),
        markdown: md1,
      },
      screenshot: { width: W, height: H, sourcePngBytes: shotPng.length, rows: pngRows.map(strip), markdown: md2 },
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${outFile}`);
