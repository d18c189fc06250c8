// Thumbnail scenarios: thumb-uncached (a 4000x3000 JPEG, every media thumbnailed once, vs a
// plain sharp loop in a child process), thumb-cached (a stored thumbnail under autocannon vs
// nginx serving the same bytes from a file) and thumb-animated (a 100-frame GIF to animated
// WebP vs plain sharp in a child process, time and peak RSS).
import http from 'node:http';
import os from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { httpGet, MiB } from './lib/http.mjs';
import { runAutocannon, AUTOCANNON_WORKERS } from './lib/load.mjs';
import { startChild, withCpu } from './lib/proc.mjs';
import { startRssSampler, idleRss } from './lib/rss.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';
import { photoJpeg, animatedGif, sharpLoopArgs, parseChildResult, percentile } from './lib/images.mjs';

export const THUMBNAIL_SCENARIOS = ['thumb-uncached', 'thumb-cached', 'thumb-animated'];
/** Config for our server when thumbnail scenarios run (before --set, which can override them):
 * no background thumbnails after uploads, and a queue that never answers 429 under the bench. */
export const THUMBNAIL_OVERRIDES = ['thumbnails.pregenerate=false', 'thumbnails.maxQueue=1024'];

const UNCACHED_GOAL = 0.8;
const mib = (b) => (b === null || b === undefined ? null : round(b / MiB, 1));

// Fixtures are made once per run (the JPEG takes ~2 s, the GIF ~6 s) and kept in the work dir.
const fixtures = {};
async function fixture(workDir, name) {
  if (!fixtures[name]) {
    const t0 = performance.now();
    const bytes = name === 'photo.jpg' ? await photoJpeg() : await animatedGif();
    const file = join(workDir, name);
    writeFileSync(file, bytes);
    console.log(`  fixture ${name}: ${bytes.length} bytes, made in ${round((performance.now() - t0) / 1000, 1)} s`);
    fixtures[name] = { bytes, file };
  }
  return fixtures[name];
}

function thumbPath(media, { width, height, method = 'scale', animated = false, legacy = false }) {
  const tail = `${encodeURIComponent(media.server)}/${encodeURIComponent(media.mediaId)}`;
  const base = legacy ? '/_matrix/media/v3/thumbnail/' : '/_matrix/client/v1/media/thumbnail/';
  return `${base}${tail}?width=${width}&height=${height}&method=${method}&animated=${animated}`;
}

function thumbHeaders(target, legacy = false) {
  return legacy ? { host: target.host } : { host: target.host, authorization: `Bearer ${target.token}` };
}

/** GET into memory on a keep-alive agent; resolves { status, contentType, body, ms }. */
function get(url, headers, agent) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          contentType: res.headers['content-type'],
          body: Buffer.concat(parts),
          ms: performance.now() - t0,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

let uploadCounter = 0;
/** Uploads `bytes` as `contentType` with a filename never used before: the same user uploading
 * the same bytes under the same name gets the earlier media back, so the name makes each upload
 * a new media ID (the blob itself is deduplicated by hash and stored once). */
/** Uploads image bytes through the spec endpoint; resolves { server, mediaId }. */
export function uploadImage(target, bytes, contentType) {
  const url = `${target.url}/_matrix/media/v3/upload?filename=bench-${process.pid}-${++uploadCounter}.${contentType.split('/')[1]}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        headers: {
          host: target.host,
          authorization: `Bearer ${target.token}`,
          'content-type': contentType,
          'content-length': bytes.length,
        },
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const body = Buffer.concat(parts).toString();
          if (res.statusCode !== 200)
            return reject(new Error(`upload answered ${res.statusCode}: ${body.slice(0, 300)}`));
          const m = /^mxc:\/\/([^/]+)\/(.+)$/.exec(JSON.parse(body).content_uri ?? '');
          if (!m) return reject(new Error(`upload answered without a content_uri: ${body.slice(0, 300)}`));
          resolve({ server: m[1], mediaId: m[2] });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

/** Uploads `bytes` `n` times (4 at a time): n distinct media IDs. */
async function uploadMany(target, bytes, n, contentType) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(4, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await uploadImage(target, bytes, contentType);
      }
    }),
  );
  const ids = new Set(out.map((m) => m.mediaId));
  if (ids.size !== n) throw new Error(`${n} uploads gave only ${ids.size} distinct media IDs`);
  return out;
}

/** Checks one thumbnail answer; returns a short description of what is wrong, or null. */
async function checkThumb(r, { contentType, width, height, pages }) {
  if (r.status !== 200) return `status ${r.status}: ${r.body.subarray(0, 200).toString()}`;
  if (r.contentType !== contentType) return `Content-Type ${r.contentType}, expected ${contentType}`;
  const m = await sharp(r.body, { animated: pages > 1 }).metadata();
  const h = m.pageHeight ?? m.height;
  if (m.width !== width || h !== height || (m.pages ?? 1) !== pages)
    return `${m.width}x${h}, ${m.pages ?? 1} pages; expected ${width}x${height}, ${pages}`;
  return null;
}

/** Each of `medias` thumbnailed once, `concurrency` requests at a time. */
/** Runs `work` against our server while sampling its CPU and RSS (idle before, peak during). */
async function measured(target, work) {
  const pids = target.pid ? [target.pid] : [];
  const idle = pids.length ? await idleRss(pids) : null;
  const sampler = pids.length ? startRssSampler(pids, 20) : null;
  try {
    const { result, cpuPct } = await withCpu(pids, work);
    return { r: { ...result, cpuPct }, idle, rss: sampler ? await sampler.stop() : null };
  } catch (e) {
    await sampler?.stop();
    throw e;
  }
}

async function thumbnailAll(target, medias, { concurrency, width, height, animated = false }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const headers = thumbHeaders(target);
  const lat = [];
  const statuses = {};
  let failures = 0;
  let firstFailure = null;
  let last = null;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < medias.length) {
        const m = medias[next++];
        let r;
        try {
          r = await get(target.url + thumbPath(m, { width, height, animated }), headers, agent);
        } catch (e) {
          r = { status: 'error', body: Buffer.from(e.message), ms: 0 };
        }
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 200) {
          lat.push(r.ms);
          last = r;
        } else {
          failures++;
          firstFailure ??= `${r.status}: ${r.body.subarray(0, 200).toString()}`;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return {
    done: lat.length,
    seconds,
    perSec: lat.length / seconds,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    meanMs: lat.reduce((a, b) => a + b, 0) / (lat.length || 1),
    failures,
    statuses,
    firstFailure,
    last,
  };
}

/** Runs the plain-sharp loop of bench/lib/images.mjs in a child with UV_THREADPOOL_SIZE set. */
async function sharpChild(spec, uvThreads) {
  const child = startChild('sharp-baseline', process.execPath, sharpLoopArgs(spec), {
    env: { UV_THREADPOOL_SIZE: String(uvThreads) },
  });
  const code = await child.exited;
  if (code !== 0) throw new Error(`sharp baseline child exited ${code}:\n${child.output()}`);
  return parseChildResult(child.output());
}

async function uncachedScenario({ target, reps, durationS, suffix, workDir, concurrency }) {
  const name = 'thumb-uncached';
  const C = concurrency || os.availableParallelism();
  const size = { width: 320, height: 240 };
  console.log(
    `\n== ${name}: 4000x3000 JPEG -> 320x240 scale, each media thumbnailed once, ${C} requests at a time, ${reps} runs`,
  );
  const { bytes, file } = await fixture(workDir, 'photo.jpg');
  const expect = { contentType: 'image/jpeg', ...size, pages: 1 };

  // Warm-up: the pools start their threads on demand; also checks the output and sizes N.
  const warm = await thumbnailAll(target, await uploadMany(target, bytes, 2 * C, 'image/jpeg'), {
    concurrency: C,
    ...size,
  });
  if (warm.failures) throw new Error(`${name}: warm-up thumbnail failed: ${warm.firstFailure}`);
  const bad = await checkThumb(warm.last, expect);
  if (bad) throw new Error(`${name}: the thumbnail is wrong: ${bad}`);
  const warm2 = await thumbnailAll(target, await uploadMany(target, bytes, 2 * C, 'image/jpeg'), {
    concurrency: C,
    ...size,
  });
  const n = Math.max(4 * C, Math.min(1000, Math.round(warm2.perSec * durationS)));
  console.log(`  warm-up: ${round(warm2.perSec, 1)} thumbnails/s; ${n} media per run (about ${durationS} s)`);

  const uvThreads = C + 4;
  const variants = [
    {
      key: 'ours',
      label: `${target.name} (HTTP, c${C})`,
      async run() {
        const medias = await uploadMany(target, bytes, n, 'image/jpeg');
        const { r, idle, rss } = await measured(target, () =>
          thumbnailAll(target, medias, { concurrency: C, ...size }),
        );
        delete r.last;
        return { ...r, idleRssBytes: idle, peakRssBytes: rss?.peakBytes ?? null };
      },
    },
    {
      key: 'sharp',
      label: `plain sharp (child, c${C}, UV_THREADPOOL_SIZE=${uvThreads})`,
      run: () =>
        sharpChild(
          { op: 'still', input: file, readEach: true, concurrency: C, seconds: durationS, warmup: C, sampleRss: true },
          uvThreads,
        ),
    },
  ];
  const runs = { ours: [], sharp: [] };
  for (let i = 0; i < reps; i++) {
    const order = i % 2 ? [...variants].reverse() : variants;
    for (const v of order) {
      const r = await v.run();
      runs[v.key].push(r);
      console.log(
        `  run ${i + 1} ${v.label}: ${round(r.perSec, 1)} thumbnails/s (${r.done} in ${round(r.seconds, 1)} s), p50 ${round(r.p50Ms, 0)} ms, p99 ${round(r.p99Ms, 0)} ms, ` +
          `CPU ${round(r.cpuPct, 0) ?? '-'}%, peak RSS ${mib(r.peakRssBytes) ?? '-'} MiB${r.failures ? `, FAILED ${r.failures} (${JSON.stringify(r.statuses)}; ${r.firstFailure})` : ''}`,
      );
    }
  }
  const summary = {
    source: { width: 4000, height: 3000, bytes: bytes.length },
    output: size,
    concurrency: C,
    mediaPerRun: n,
    goal: UNCACHED_GOAL,
    variants: {},
  };
  for (const v of variants) {
    const rs = runs[v.key];
    summary.variants[v.key] = {
      label: v.label,
      perSec: round(median(rs.map((r) => r.perSec)), 1),
      p50Ms: round(median(rs.map((r) => r.p50Ms)), 0),
      p99Ms: round(median(rs.map((r) => r.p99Ms)), 0),
      cpuPct: round(median(rs.map((r) => r.cpuPct)), 0),
      peakRssMiB: mib(Math.max(...rs.map((r) => r.peakRssBytes ?? 0)) || null),
      idleRssMiB: mib(median(rs.map((r) => r.idleRssBytes))),
      failures: rs.reduce((a, r) => a + (r.failures || 0), 0),
    };
  }
  summary.ratioToSharp = ratio(summary.variants.ours.perSec, summary.variants.sharp.perSec);
  printTable(
    `${name} (median of ${reps}; target ratio >= ${UNCACHED_GOAL})`,
    ['', 'thumbnails/s', 'p50 ms', 'p99 ms', 'CPU %', 'idle RSS MiB', 'peak RSS MiB', 'failed', 'ratio/sharp'],
    variants.map((v) => {
      const s = summary.variants[v.key];
      return [
        v.label,
        s.perSec,
        s.p50Ms,
        s.p99Ms,
        s.cpuPct,
        s.idleRssMiB,
        s.peakRssMiB,
        v.key === 'ours' ? s.failures : null,
        v.key === 'ours' ? summary.ratioToSharp : null,
      ];
    }),
  );
  console.log(SHARED_CORES_NOTE);
  const out = writeResult(name, { target: target.name, database: target.database, reps, summary, runs }, suffix);
  console.log(`wrote ${out}`);
  return summary;
}

async function cachedScenario({ target, nginx, reps, durationS, suffix, workDir }) {
  const name = 'thumb-cached';
  const connections = 64;
  const size = { width: 320, height: 240 };
  console.log(
    `\n== ${name}: one stored 320x240 thumbnail, autocannon at ${connections} connections for ${durationS} s, ${reps} runs`,
  );
  const { bytes } = await fixture(workDir, 'photo.jpg');
  const media = await uploadImage(target, bytes, 'image/jpeg');
  const first = await get(target.url + thumbPath(media, size), thumbHeaders(target));
  const bad = await checkThumb(first, { contentType: 'image/jpeg', ...size, pages: 1 });
  if (bad) throw new Error(`${name}: the thumbnail is wrong: ${bad}`);
  const thumb = first.body;
  console.log(`  thumbnail: ${thumb.length} bytes, generated in ${round(first.ms, 0)} ms`);
  const variants = [];
  if (nginx) {
    const path = nginx.putStatic('thumbnail-320x240.jpg', thumb);
    variants.push({
      key: 'nginx',
      label: 'nginx (static file)',
      url: nginx.url + path,
      headers: { host: target.host },
      pids: nginx.pids,
    });
  }
  const pids = () => (target.pid ? [target.pid] : []);
  if (target.legacyDownload)
    variants.push({
      key: 'legacy',
      label: `${target.name} legacy (no auth)`,
      url: target.url + thumbPath(media, { ...size, legacy: true }),
      headers: thumbHeaders(target, true),
      pids,
    });
  variants.push({
    key: 'authed',
    label: `${target.name} authenticated`,
    url: target.url + thumbPath(media, size),
    headers: thumbHeaders(target),
    pids,
  });
  for (const v of variants) {
    const r = await httpGet(v.url, { headers: v.headers });
    if (r.status !== 200 || !r.body.equals(thumb))
      throw new Error(
        `${name}: ${v.label} answered ${r.status} with ${r.body.length} bytes, expected the ${thumb.length}-byte thumbnail`,
      );
  }
  const load = (v, d) =>
    runAutocannon({ url: v.url, headers: v.headers, connections, durationS: d, workers: AUTOCANNON_WORKERS });
  for (const v of variants) await load(v, Math.min(2, durationS)); // no longer than a measurement (--smoke)
  const runs = Object.fromEntries(variants.map((v) => [v.key, []]));
  for (let i = 0; i < reps; i++) {
    const order = variants.map((_, j) => variants[(i + j) % variants.length]);
    for (const v of order) {
      const { result, cpuPct, loadGenCpuPct } = await withCpu(v.pids, () => load(v, durationS));
      result.serverCpuPct = round(cpuPct, 0);
      result.loadGenCpuPct = round(loadGenCpuPct, 0);
      runs[v.key].push(result);
      const failed = result.non2xx || result.errors || result.timeouts;
      console.log(
        `  run ${i + 1} ${v.label}: ${round(result.reqPerSec, 0)} req/s, p99 ${result.latencyP99} ms, server CPU ${result.serverCpuPct ?? '-'}%${failed ? `, non2xx ${result.non2xx} errors ${result.errors} timeouts ${result.timeouts}` : ''}`,
      );
    }
  }
  const summary = {
    thumbnailBytes: thumb.length,
    connections,
    durationS,
    autocannonWorkers: AUTOCANNON_WORKERS,
    variants: {},
  };
  for (const v of variants) {
    const rs = runs[v.key];
    const rps = median(rs.map((r) => r.reqPerSec));
    summary.variants[v.key] = {
      label: v.label,
      reqPerSec: round(rps, 0),
      payloadMiBPerSec: round((rps * thumb.length) / MiB, 1),
      latencyP50Ms: median(rs.map((r) => r.latencyP50)),
      latencyP99Ms: median(rs.map((r) => r.latencyP99)),
      serverCpuPct: median(rs.map((r) => r.serverCpuPct)),
      loadGenCpuPct: median(rs.map((r) => r.loadGenCpuPct)),
      failures: rs.reduce((a, r) => a + (r.non2xx || 0) + (r.errors || 0) + (r.timeouts || 0), 0),
    };
  }
  const base = summary.variants.nginx?.reqPerSec;
  for (const v of variants)
    if (v.key !== 'nginx')
      summary.variants[v.key].ratioToNginx = base ? ratio(summary.variants[v.key].reqPerSec, base) : null;
  printTable(
    `${name} (median of ${reps}; autocannon with ${AUTOCANNON_WORKERS} workers -c${connections}; ${thumb.length}-byte thumbnail)`,
    ['server', 'req/s', 'MiB/s', 'p99 ms', 'server CPU %', 'load gen CPU %', 'failed', 'ratio/nginx'],
    variants.map((v) => {
      const s = summary.variants[v.key];
      return [
        v.label,
        s.reqPerSec,
        s.payloadMiBPerSec,
        s.latencyP99Ms,
        s.serverCpuPct,
        s.loadGenCpuPct,
        s.failures,
        v.key === 'nginx' ? null : s.ratioToNginx,
      ];
    }),
  );
  console.log(SHARED_CORES_NOTE);
  const out = writeResult(name, { target: target.name, database: target.database, reps, summary, runs }, suffix);
  console.log(`wrote ${out}`);
  return summary;
}

async function animatedScenario({ target, reps, durationS, suffix, workDir }) {
  const name = 'thumb-animated';
  const size = { width: 320, height: 240, animated: true };
  const expect = { contentType: 'image/webp', width: 320, height: 180, pages: 100 };
  console.log(
    `\n== ${name}: 480x270 100-frame GIF -> animated WebP 320x180 (asked 320x240 scale), one at a time, ${reps} runs`,
  );
  const { bytes, file } = await fixture(workDir, 'anim.gif');
  const warmMedia = await uploadImage(target, bytes, 'image/gif');
  const warm = await get(target.url + thumbPath(warmMedia, size), thumbHeaders(target));
  const bad = await checkThumb(warm, expect);
  if (bad) throw new Error(`${name}: the thumbnail is wrong: ${bad}`);
  const k = Math.max(3, Math.min(30, Math.round((durationS * 1000) / warm.ms)));
  console.log(`  warm-up: ${round(warm.ms, 0)} ms, ${warm.body.length}-byte WebP; ${k} thumbnails per run`);
  const variants = [
    {
      key: 'ours',
      label: `${target.name} (HTTP, animated=true)`,
      async run() {
        const medias = await uploadMany(target, bytes, k, 'image/gif');
        const { r, idle, rss } = await measured(target, () =>
          thumbnailAll(target, medias, { concurrency: 1, ...size }),
        );
        if (r.last) {
          const wrong = await checkThumb(r.last, expect);
          if (wrong) throw new Error(`${name}: the thumbnail is wrong: ${wrong}`);
        }
        delete r.last;
        return { ...r, idleRssBytes: idle, peakRssBytes: rss?.peakBytes ?? null };
      },
    },
    {
      key: 'sharp',
      label: 'plain sharp (child, UV_THREADPOOL_SIZE=5)',
      run: () =>
        sharpChild(
          { op: 'animated', input: file, readEach: true, concurrency: 1, count: k, warmup: 1, sampleRss: true },
          5,
        ),
    },
  ];
  const runs = { ours: [], sharp: [] };
  for (let i = 0; i < reps; i++) {
    const order = i % 2 ? [...variants].reverse() : variants;
    for (const v of order) {
      const r = await v.run();
      runs[v.key].push(r);
      console.log(
        `  run ${i + 1} ${v.label}: ${r.done} thumbnails, p50 ${round(r.p50Ms, 0)} ms, mean ${round(r.meanMs, 0)} ms, CPU ${round(r.cpuPct, 0) ?? '-'}%, ` +
          `RSS idle ${mib(r.idleRssBytes) ?? '-'} MiB, peak ${mib(r.peakRssBytes) ?? '-'} MiB${r.failures ? `, FAILED ${r.failures} (${r.firstFailure})` : ''}`,
      );
    }
  }
  const summary = {
    source: { width: 480, height: 270, frames: 100, bytes: bytes.length },
    output: expect,
    perRun: k,
    variants: {},
  };
  for (const v of variants) {
    const rs = runs[v.key];
    summary.variants[v.key] = {
      label: v.label,
      p50Ms: round(median(rs.map((r) => r.p50Ms)), 0),
      meanMs: round(median(rs.map((r) => r.meanMs)), 0),
      cpuPct: round(median(rs.map((r) => r.cpuPct)), 0),
      idleRssMiB: mib(median(rs.map((r) => r.idleRssBytes))),
      peakRssMiB: mib(Math.max(...rs.map((r) => r.peakRssBytes ?? 0)) || null),
      peakGrowthMiB: mib(
        median(rs.map((r) => (r.peakRssBytes && r.idleRssBytes ? r.peakRssBytes - r.idleRssBytes : null))),
      ),
      failures: rs.reduce((a, r) => a + (r.failures || 0), 0),
    };
  }
  // Speed ratio ours/sharp as throughput: sharp's time over ours (1.0 = as fast; higher is better).
  summary.speedRatioToSharp = ratio(summary.variants.sharp.p50Ms, summary.variants.ours.p50Ms);
  printTable(
    `${name} (median of ${reps} runs of ${k}; RSS: median idle, max peak, median growth)`,
    ['', 'ms/thumbnail p50', 'mean ms', 'CPU %', 'idle RSS MiB', 'peak RSS MiB', 'growth MiB', 'failed', 'speed ratio'],
    variants.map((v) => {
      const s = summary.variants[v.key];
      return [
        v.label,
        s.p50Ms,
        s.meanMs,
        s.cpuPct,
        s.idleRssMiB,
        s.peakRssMiB,
        s.peakGrowthMiB,
        v.key === 'ours' ? s.failures : null,
        v.key === 'ours' ? summary.speedRatioToSharp : null,
      ];
    }),
  );
  console.log('speed ratio = sharp ms / our ms (1.0 = as fast as plain sharp). ' + SHARED_CORES_NOTE);
  const out = writeResult(name, { target: target.name, database: target.database, reps, summary, runs }, suffix);
  console.log(`wrote ${out}`);
  return summary;
}

const RUNNERS = {
  'thumb-uncached': uncachedScenario,
  'thumb-cached': cachedScenario,
  'thumb-animated': animatedScenario,
};

export async function runThumbnails(ctx, scenarios) {
  const out = {};
  for (const s of THUMBNAIL_SCENARIOS) if (scenarios.includes(s)) out[s] = await RUNNERS[s](ctx);
  return out;
}
