// The mixed scenario: one server under a workload shaped like a busy homeserver's, rather than
// one request type at a time. A few hundred files of 1 KiB to 2 MiB (log-uniform, so most are
// small, as chat media is) plus some JPEG photos are uploaded first; then C loops issue requests
// until --duration or --max-requests: ~85 % downloads and ~10 % thumbnails, both picking their
// item by Zipf popularity (a few items take most requests, as in rooms), and ~5 % new uploads.
// There is no baseline: nginx cannot thumbnail or take our uploads, so a mix would compare
// different work.
import http from 'node:http';
import { bodyBytes, specUpload, MiB } from './lib/http.mjs';
import { prng, photoJpeg } from './lib/images.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { withCpu } from './lib/proc.mjs';
import { round, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

export const MIXED_SCENARIOS = ['mixed'];

const SHARE = { upload: 0.05, thumbnail: 0.1 }; // the rest are downloads
const ZIPF_S = 1.0;

/** Picks an index 0..n-1 with P(rank k) ~ 1/k^s; ranks are shuffled so popularity is not size. */
function zipfPicker(n, rand) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / (k + 1) ** ZIPF_S;
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return () => {
    const x = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return order[lo];
  };
}

/** Log-uniform size between 1 KiB and 2 MiB. */
const fileSize = (rand) => Math.round(1024 * 2 ** (rand() * 11));

/** One request; resolves { status, bytes, ms } (status 0 on a socket error). */
function request(agent, url, { method = 'GET', headers, body } = {}) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let bytes = 0;
      res.on('data', (d) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes, ms: performance.now() - t0 }));
      res.on('error', () => resolve({ status: 0, bytes, ms: performance.now() - t0 }));
    });
    req.on('error', () => resolve({ status: 0, bytes: 0, ms: performance.now() - t0 }));
    req.end(body);
  });
}

const pct = (sorted, p) =>
  sorted.length ? round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))], 1) : null;

/** ctx: { target, durationS, concurrency, mixedFiles, maxRequests, suffix }. */
async function mixed({ target, durationS, concurrency, mixedFiles = 300, maxRequests = Infinity, suffix }) {
  const C = concurrency || 16;
  const nPhotos = Math.max(2, Math.round(mixedFiles / 15));
  console.log(
    `\n== mixed: ${mixedFiles} files (1 KiB-2 MiB) + ${nPhotos} photos; ${C} loops for ${durationS} s (at most ${maxRequests} requests); ~${100 - (SHARE.upload + SHARE.thumbnail) * 100}% downloads, ${SHARE.thumbnail * 100}% thumbnails, ${SHARE.upload * 100}% uploads, Zipf s=${ZIPF_S}`,
  );
  const rand = prng(42);
  const files = [];
  for (let i = 0; i < mixedFiles; i++) {
    const size = fileSize(rand);
    files.push({ ...(await specUpload(target, { bytes: bodyBytes(size) })), size });
  }
  const photos = [];
  // Small photo-like JPEGs (the thumbnail bench's fixture at 480x360), a different one each.
  for (let i = 0; i < nPhotos; i++)
    photos.push(
      await specUpload(target, { bytes: await photoJpeg({ width: 480, height: 360, quality: 80, seed: 100 + i }) }),
    );
  console.log(
    `  uploaded ${files.length} files (${round(files.reduce((a, f) => a + f.size, 0) / MiB)} MiB) and ${photos.length} photos`,
  );

  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const auth = { host: target.host, authorization: `Bearer ${target.token}` };
  const pickFile = zipfPicker(files.length, rand);
  const pickPhoto = zipfPicker(photos.length, rand);
  const tail = (m) => `${encodeURIComponent(m.server)}/${encodeURIComponent(m.mediaId)}`;
  // A few thumbnail sizes, so some requests hit stored thumbnails and some make new ones.
  const thumbSizes = [
    [96, 96, 'crop'],
    [320, 240, 'scale'],
    [640, 480, 'scale'],
  ];
  const ops = { download: [], thumbnail: [], upload: [] };
  let errors = 0;
  let bytes = 0;
  let issued = 0;
  const firstErrors = [];

  const one = async () => {
    const r = rand();
    let kind;
    let res;
    if (r < SHARE.upload) {
      kind = 'upload';
      const body = bodyBytes(fileSize(rand));
      res = await request(agent, `${target.url}/_matrix/media/v3/upload?filename=m${issued}.bin`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': body.length },
        body,
      });
      if (res.status === 200) bytes += body.length;
    } else if (r < SHARE.upload + SHARE.thumbnail) {
      kind = 'thumbnail';
      const [w, h, method] = thumbSizes[Math.floor(rand() * thumbSizes.length)];
      res = await request(
        agent,
        `${target.url}/_matrix/client/v1/media/thumbnail/${tail(photos[pickPhoto()])}?width=${w}&height=${h}&method=${method}`,
        { headers: auth },
      );
      if (res.status === 200) bytes += res.bytes;
    } else {
      kind = 'download';
      const f = files[pickFile()];
      res = await request(agent, `${target.url}/_matrix/client/v1/media/download/${tail(f)}`, { headers: auth });
      // A short body is as wrong as a 500.
      if (res.status === 200 && res.bytes !== f.size) res.status = -1;
      if (res.status === 200) bytes += res.bytes;
    }
    if (res.status === 200) ops[kind].push(res.ms);
    else {
      errors++;
      if (firstErrors.length < 3) firstErrors.push(`${kind}: status ${res.status}`);
    }
  };

  const pids = target.pid ? [target.pid] : [];
  const sampler = pids.length ? startRssSampler(pids) : null;
  const t0 = performance.now();
  const until = t0 + durationS * 1000;
  const { cpuPct, loadGenCpuPct } = await withCpu(pids, () =>
    Promise.all(
      Array.from({ length: C }, async () => {
        while (performance.now() < until && issued < maxRequests) {
          issued++;
          await one();
        }
      }),
    ),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  const rss = sampler ? await sampler.stop() : null;
  agent.destroy();

  const all = [...ops.download, ...ops.thumbnail, ...ops.upload].sort((a, b) => a - b);
  const perOp = {};
  for (const [k, v] of Object.entries(ops)) {
    v.sort((a, b) => a - b);
    perOp[k] = { count: v.length, reqPerSec: round(v.length / elapsedS, 1), p50Ms: pct(v, 0.5), p99Ms: pct(v, 0.99) };
  }
  const summary = {
    files: files.length,
    photos: photos.length,
    concurrency: C,
    durationS,
    maxRequests: Number.isFinite(maxRequests) ? maxRequests : null,
    shares: SHARE,
    zipfS: ZIPF_S,
    elapsedS: round(elapsedS, 2),
    requests: issued,
    reqPerSec: round(all.length / elapsedS, 1),
    mibPerSec: round(bytes / MiB / elapsedS, 1),
    p50Ms: pct(all, 0.5),
    p99Ms: pct(all, 0.99),
    errors,
    firstErrors,
    serverCpuPct: round(cpuPct, 0),
    loadGenCpuPct: round(loadGenCpuPct, 0),
    peakRssMiB: rss ? round(rss.peakBytes / MiB, 1) : null,
    perOp,
  };
  printTable(
    `mixed (${C} loops, ${round(elapsedS, 1)} s; no baseline)`,
    ['requests', 'req/s', 'p50 ms', 'p99 ms'],
    [
      ['all', summary.reqPerSec, summary.p50Ms, summary.p99Ms],
      ...Object.entries(perOp).map(([k, v]) => [k, v.reqPerSec, v.p50Ms, v.p99Ms]),
    ],
  );
  console.log(
    `payload ${summary.mibPerSec} MiB/s, errors ${errors}${firstErrors.length ? ` (${firstErrors.join('; ')})` : ''}, server CPU ${summary.serverCpuPct ?? '-'}%, load generator CPU ${summary.loadGenCpuPct}%, peak RSS ${summary.peakRssMiB ?? '-'} MiB`,
  );
  console.log(SHARED_CORES_NOTE);
  const file = writeResult('mixed', { target: target.name, database: target.database, summary }, suffix);
  console.log(`wrote ${file}`);
  return summary;
}

export async function runMixed(ctx, scenarios) {
  return scenarios.includes('mixed') ? { mixed: await mixed(ctx) } : {};
}
