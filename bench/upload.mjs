// Upload scenarios: upload-1gib-rss (memory stays flat while a 1 GiB body streams through) and
// upload-concurrent (8 parallel 20 MiB uploads vs nginx WebDAV PUT, same client code).
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { sendBody, httpGet, MiB, GiB } from './lib/http.mjs';
import { startRssSampler, idleRss } from './lib/rss.mjs';
import { syncDisks, withCpu } from './lib/proc.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';
import http from 'node:http';
import { runUploadSizes } from './upload-sizes.mjs';

export const UPLOAD_SCENARIOS = ['upload-1gib-rss', 'upload-concurrent', 'upload-sizes'];

const RSS_TARGET = 64 * MiB;
const mib = (b) => round(b / MiB, 1);

/** Uploads one body while sampling RSS of `pids`; returns the figures of one run. */
async function oneBigUpload({ pids, send, verify }) {
  const baseline = pids.length ? await idleRss(pids) : null;
  const sampler = pids.length ? startRssSampler(pids, 20) : null;
  let r;
  let rss = null;
  try {
    r = await send();
  } finally {
    rss = sampler ? await sampler.stop() : null;
  }
  const verified = await verify(r);
  return {
    status: r.status,
    seconds: round(r.ms / 1000, 2),
    mibPerSec: round(GiB / MiB / (r.ms / 1000), 1),
    baselineRssMiB: baseline === null ? null : mib(baseline),
    peakRssMiB: rss ? mib(rss.peakBytes) : null,
    peakGrowthMiB: rss ? mib(rss.peakBytes - baseline) : null,
    rssSamples: rss?.samples ?? null,
    storedBytes: verified.storedBytes,
    ok: verified.ok,
    error: verified.error,
    rssTimeline: rss ? rss.timeline.map(([t, b]) => [t, mib(b)]) : null,
  };
}

export async function upload1GiB({ target, nginx, reps, chunked, suffix, bigUploadBytes = GiB }) {
  // --smoke makes it smaller (the scenario keeps its name; the record says the size).
  const size = bigUploadBytes;
  console.log(`\n== upload-1gib-rss: one ${size / MiB} MiB upload, RSS sampled every 20 ms, ${reps} runs`);
  const runs = { ours: [], nginx: [] };
  let contentLengthRejected = null;
  if (!chunked) {
    // uWebSockets.js before the fix of uNetworking/uWebSockets#1693 drops any request whose
    // Content-Length has 10 digits (>= 1e9 bytes). Probe once, and measure chunked if so.
    const probe = await sendBody({
      url: `${target.url}/_matrix/media/v3/upload?filename=1gib.bin`,
      size,
      headers: { Host: target.host, Authorization: `Bearer ${target.token}` },
    }).then(
      (r) => (r.status === 200 ? null : `status ${r.status}: ${r.body.slice(0, 200)}`),
      (e) => e.message,
    );
    contentLengthRejected = probe;
    if (probe) {
      console.log(
        `  WARNING: a ${size / MiB} MiB upload with Content-Length: ${size} failed (${probe}); measuring with chunked bodies instead`,
      );
      chunked = true;
    } else {
      console.log(`  ${size / MiB} MiB upload with Content-Length accepted`);
    }
  }
  console.log(`  body: ${chunked ? 'Transfer-Encoding: chunked' : 'Content-Length'}`);
  for (let i = 0; i < reps; i++) {
    syncDisks();
    const ours = await oneBigUpload({
      pids: target.pid ? [target.pid] : [],
      send: () =>
        sendBody({
          url: `${target.url}/_matrix/media/v3/upload?filename=1gib.bin`,
          size,
          chunked,
          headers: { Host: target.host, Authorization: `Bearer ${target.token}` },
        }),
      async verify(r) {
        if (r.status !== 200)
          return { ok: false, error: `status ${r.status}: ${r.body.slice(0, 200)}`, storedBytes: null };
        const m = /^mxc:\/\/([^/]+)\/(.+)$/.exec(JSON.parse(r.body).content_uri ?? '');
        const d = await httpGet(`${target.url}/_matrix/client/v1/media/download/${m[1]}/${m[2]}`, {
          headers: { host: target.host, authorization: `Bearer ${target.token}` },
          maxBytes: 0,
        });
        const storedBytes = Number(d.headers['content-length']);
        return {
          ok: d.status === 200 && storedBytes === size,
          storedBytes,
          error: storedBytes === size ? null : `download said ${d.status}, ${storedBytes} bytes`,
        };
      },
    });
    runs.ours.push(ours);
    console.log(
      `  run ${i + 1} ${target.name}: ${ours.mibPerSec} MiB/s, RSS ${ours.baselineRssMiB ?? '-'} -> peak ${ours.peakRssMiB ?? '-'} MiB (+${ours.peakGrowthMiB ?? '-'}), stored ${ours.storedBytes} bytes${ours.ok ? '' : ` FAILED: ${ours.error}`}`,
    );
    if (nginx) {
      syncDisks();
      const name = `1gib-${i}.bin`;
      const ng = await oneBigUpload({
        pids: nginx.pids(),
        send: () => sendBody({ url: `${nginx.url}/dav/${name}`, method: 'PUT', size, chunked }),
        async verify(r) {
          const storedBytes = statSync(join(nginx.staticDir, '..', 'dav', name)).size;
          return {
            ok: (r.status === 201 || r.status === 204) && storedBytes === size,
            storedBytes,
            error: r.status >= 300 ? `status ${r.status}` : null,
          };
        },
      });
      nginx.clearDav();
      runs.nginx.push(ng);
      console.log(
        `  run ${i + 1} nginx: ${ng.mibPerSec} MiB/s, RSS (master+workers) ${ng.baselineRssMiB} -> peak ${ng.peakRssMiB} MiB (+${ng.peakGrowthMiB})`,
      );
    }
  }
  const med = (side, k) => median(runs[side].map((r) => r[k]));
  const summary = {
    ours: {
      mibPerSec: med('ours', 'mibPerSec'),
      baselineRssMiB: med('ours', 'baselineRssMiB'),
      peakGrowthMiB: med('ours', 'peakGrowthMiB'),
      maxPeakGrowthMiB: runs.ours.some((r) => r.peakGrowthMiB !== null)
        ? Math.max(...runs.ours.map((r) => r.peakGrowthMiB ?? 0))
        : null,
      allOk: runs.ours.every((r) => r.ok),
    },
    nginx: nginx ? { mibPerSec: med('nginx', 'mibPerSec'), peakGrowthMiB: med('nginx', 'peakGrowthMiB') } : null,
  };
  summary.ratioThroughput = nginx ? ratio(summary.ours.mibPerSec, summary.nginx.mibPerSec) : null;
  summary.rssTargetMiB = RSS_TARGET / MiB;
  summary.rssPass = summary.ours.maxPeakGrowthMiB === null ? null : summary.ours.maxPeakGrowthMiB < RSS_TARGET / MiB;
  printTable(
    `upload-1gib-rss (median of ${reps}; RSS growth target < ${RSS_TARGET / MiB} MiB)`,
    ['server', 'MiB/s', 'base RSS MiB', 'peak growth MiB', 'max growth MiB', 'ok'],
    [
      [
        target.name,
        summary.ours.mibPerSec,
        summary.ours.baselineRssMiB,
        summary.ours.peakGrowthMiB,
        summary.ours.maxPeakGrowthMiB,
        summary.ours.allOk ? 'yes' : 'NO',
      ],
      ...(nginx
        ? [
            [
              'nginx (dav PUT)',
              summary.nginx.mibPerSec,
              med('nginx', 'baselineRssMiB'),
              summary.nginx.peakGrowthMiB,
              null,
              runs.nginx.every((r) => r.ok) ? 'yes' : 'NO',
            ],
          ]
        : []),
    ],
  );
  if (summary.ratioThroughput !== null)
    console.log(`ratio throughput ${target.name}/nginx: ${summary.ratioThroughput}`);
  if (contentLengthRejected)
    console.log(
      `Content-Length upload of ${size / MiB} MiB FAILED (${contentLengthRejected}); figures above are for chunked bodies`,
    );
  if (target.database === 'pglite') {
    summary.rssNote =
      'PGlite runs in-process: its WASM heap (hundreds of MiB, swinging by hundreds between runs) dominates RSS and can hide or fake growth; use --postgres for the RSS figure';
    console.log(`note: ${summary.rssNote}`);
  }
  if (summary.rssPass !== null)
    console.log(
      `RSS growth ${summary.rssPass ? 'PASS' : 'FAIL'} (max ${summary.ours.maxPeakGrowthMiB} MiB, target < ${RSS_TARGET / MiB})`,
    );
  summary.chunked = chunked;
  summary.sizeBytes = size;
  summary.contentLengthError = contentLengthRejected;
  const file = writeResult(
    'upload-1gib-rss',
    { target: target.name, database: target.database, chunked, reps, summary, runs },
    suffix,
  );
  console.log(`wrote ${file}`);
  return summary;
}

/** `concurrency` loops, each uploading `size` bodies back to back until `durationS` is up. */
async function concurrentUploads({ request, okStatus, size, concurrency, durationS }) {
  const deadline = performance.now() + durationS * 1000;
  const t0 = performance.now();
  let uploads = 0;
  let failures = 0;
  let firstError = null;
  const loops = Array.from({ length: concurrency }, async (_, worker) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let n = 0; performance.now() < deadline; n++) {
        try {
          const r = await sendBody({ ...request(worker, n), size, agent });
          if (okStatus.includes(r.status)) uploads++;
          else {
            failures++;
            firstError ??= `status ${r.status}: ${r.body.slice(0, 200)}`;
          }
        } catch (e) {
          failures++;
          firstError ??= e.message;
        }
      }
    } finally {
      agent.destroy();
    }
  });
  await Promise.all(loops);
  const seconds = (performance.now() - t0) / 1000;
  return {
    uploads,
    failures,
    firstError,
    seconds: round(seconds, 2),
    mibPerSec: round((uploads * size) / MiB / seconds, 1),
  };
}

/** Bare SHA-256 of node:crypto on this thread: whole 20 MiB buffers and 64 KiB updates. */
export function sha256Throughput({ size = 20 * MiB, seconds = 2 } = {}) {
  const buf = randomBytes(size);
  const run = (chunk) => {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      const h = createHash('sha256');
      if (chunk) for (let o = 0; o < size; o += chunk) h.update(buf.subarray(o, o + chunk));
      else h.update(buf);
      h.digest();
      bytes += size;
    }
    return bytes / MiB / ((performance.now() - t0) / 1000);
  };
  return { whole: run(0), chunk64k: run(64 * 1024) };
}

export async function uploadConcurrent({ target, nginx, reps, durationS, suffix }) {
  const size = 20 * MiB;
  const concurrency = 8;
  console.log(
    `\n== upload-concurrent: ${concurrency} concurrent ${size / MiB} MiB uploads for ${durationS} s, ${reps} runs`,
  );
  const sha = [];
  // At most 2 s each, and no longer than a measurement (--smoke).
  for (let i = 0; i < reps; i++) sha.push(sha256Throughput({ seconds: Math.min(2, durationS) }));
  const shaWhole = median(sha.map((s) => s.whole));
  const sha64k = median(sha.map((s) => s.chunk64k));
  console.log(
    `  node:crypto SHA-256, one thread: ${round(shaWhole, 0)} MiB/s on 20 MiB buffers, ${round(sha64k, 0)} MiB/s in 64 KiB updates`,
  );
  const ours = () =>
    withCpu(target.pid ? [target.pid] : [], () =>
      concurrentUploads({
        size,
        concurrency,
        durationS,
        okStatus: [200],
        request: () => ({
          url: `${target.url}/_matrix/media/v3/upload?filename=c.bin`,
          headers: { Host: target.host, Authorization: `Bearer ${target.token}` },
        }),
      }),
    );
  const ng = () =>
    withCpu(nginx.pids, () =>
      concurrentUploads({
        size,
        concurrency,
        durationS,
        okStatus: [201, 204],
        request: (w, n) => ({ url: `${nginx.url}/dav/w${w}/${n}.bin`, method: 'PUT' }),
      }),
    );
  const runs = { ours: [], nginx: [] };
  for (let i = 0; i < reps; i++) {
    // Alternate who goes first, so neither side always inherits the other's writeback.
    const order = nginx ? (i % 2 ? ['nginx', 'ours'] : ['ours', 'nginx']) : ['ours'];
    for (const side of order) {
      syncDisks();
      const { result, cpuPct } = await (side === 'ours' ? ours() : ng());
      result.serverCpuPct = round(cpuPct, 0);
      runs[side].push(result);
      if (side === 'nginx') nginx.clearDav();
      console.log(
        `  run ${i + 1} ${side === 'ours' ? target.name : 'nginx'}: ${result.mibPerSec} MiB/s (${result.uploads} uploads, ${result.failures} failed, server CPU ${result.serverCpuPct ?? '-'}%)${result.firstError ? ` first error: ${result.firstError}` : ''}`,
      );
    }
  }
  const summary = {
    concurrency,
    sizeMiB: size / MiB,
    durationS,
    sha256MiBPerSec: { whole20MiB: round(shaWhole, 0), updates64KiB: round(sha64k, 0) },
    ours: {
      mibPerSec: median(runs.ours.map((r) => r.mibPerSec)),
      serverCpuPct: median(runs.ours.map((r) => r.serverCpuPct)),
      failures: runs.ours.reduce((a, r) => a + r.failures, 0),
    },
    nginx: nginx
      ? {
          mibPerSec: median(runs.nginx.map((r) => r.mibPerSec)),
          serverCpuPct: median(runs.nginx.map((r) => r.serverCpuPct)),
          failures: runs.nginx.reduce((a, r) => a + r.failures, 0),
        }
      : null,
  };
  summary.ratio = nginx ? ratio(summary.ours.mibPerSec, summary.nginx.mibPerSec) : null;
  printTable(
    `upload-concurrent (median of ${reps}; target ratio >= 0.8)`,
    ['server', 'MiB/s', 'server CPU %', 'failed'],
    [
      [target.name, summary.ours.mibPerSec, summary.ours.serverCpuPct, summary.ours.failures],
      ...(nginx
        ? [['nginx (dav PUT)', summary.nginx.mibPerSec, summary.nginx.serverCpuPct, summary.nginx.failures]]
        : []),
    ],
  );
  if (summary.ratio !== null)
    console.log(`ratio ${target.name}/nginx: ${summary.ratio} (${summary.ratio >= 0.8 ? 'meets' : 'below'} 0.8)`);
  console.log(
    `SHA-256 ceiling on one thread: ${summary.sha256MiBPerSec.whole20MiB} MiB/s (20 MiB buffers), ${summary.sha256MiBPerSec.updates64KiB} MiB/s (64 KiB updates)`,
  );
  console.log(SHARED_CORES_NOTE);
  const file = writeResult(
    'upload-concurrent',
    { target: target.name, database: target.database, reps, summary, runs },
    suffix,
  );
  console.log(`wrote ${file}`);
  return summary;
}

export async function runUploads(ctx, scenarios) {
  const out = {};
  if (scenarios.includes('upload-1gib-rss')) out['upload-1gib-rss'] = await upload1GiB(ctx);
  if (scenarios.includes('upload-concurrent')) out['upload-concurrent'] = await uploadConcurrent(ctx);
  if (scenarios.includes('upload-sizes')) out['upload-sizes'] = await runUploadSizes(ctx);
  return out;
}
