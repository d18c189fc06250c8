// download-cold: F distinct files of 256 KiB, each downloaded once per run by 32 keep-alive
// connections taking the next file from a shared counter, so nothing is hot in our blob cache
// (downloads per file stay under minDownloads) and, where the bench may drop the kernel's page
// cache (root: /proc/sys/vm/drop_caches), not in memory at all. nginx serves the same bytes
// from its own copies, after the same drop. Reports req/s, MiB/s, p50/p99, errors, peak RSS.
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { bodyBytes, specUpload, downloadRequests, MiB } from './lib/http.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { withCpu } from './lib/proc.mjs';
import { percentile } from './lib/images.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

const FILE_BYTES = 256 * 1024;
const CONNECTIONS = 32;

/** Drops the page cache (after sync) when allowed; false when not root or not permitted. */
function dropPageCache() {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

async function fetchAll(urls, headers) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const lat = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < urls.length) {
        const url = urls[next++];
        const s = performance.now();
        const ok = await new Promise((resolve) => {
          http
            .get(url, { headers, agent }, (res) => {
              let n = 0;
              res.on('data', (d) => (n += d.length));
              res.on('end', () => resolve(res.statusCode === 200 && n === FILE_BYTES));
              res.on('error', () => resolve(false));
            })
            .on('error', () => resolve(false));
        });
        if (ok) lat.push(performance.now() - s);
        else errors++;
      }
    }),
  );
  agent.destroy();
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    reqPerSec: lat.length / elapsed,
    p50Ms: round(percentile(lat, 50), 1),
    p99Ms: round(percentile(lat, 99), 1),
    errors,
  };
}

export async function runDownloadCold(ctx) {
  const { target, nginx, reps, suffix } = ctx;
  const F = ctx.smoke ? 64 : 1024;
  console.log(
    `\n== download-cold: ${F} distinct ${FILE_BYTES / 1024} KiB files, each once per run, ${CONNECTIONS} connections, ${reps} runs`,
  );
  const ours = [];
  const theirs = [];
  for (let i = 0; i < F; i++) {
    const bytes = bodyBytes(FILE_BYTES);
    const m = await specUpload(target, { bytes });
    ours.push(target.url + downloadRequests(target, m).authed.path);
    if (nginx) theirs.push(nginx.url + nginx.putStatic(`cold-${i}.bin`, bytes));
  }
  const oursHeaders = downloadRequests(target, { server: target.host, mediaId: 'x' }).authed.headers;
  const variants = [
    {
      key: 'ours',
      label: `${target.name} authenticated`,
      urls: ours,
      headers: oursHeaders,
      pids: target.pid ? [target.pid] : [],
    },
  ];
  if (nginx)
    variants.push({
      key: 'nginx',
      label: 'nginx (static files)',
      urls: theirs,
      headers: { host: target.host },
      pids: [],
    });
  const runs = Object.fromEntries(variants.map((v) => [v.key, []]));
  let dropped = true;
  for (let i = 0; i < reps; i++) {
    for (const v of i % 2 ? [...variants].reverse() : variants) {
      dropped = dropPageCache() && dropped;
      const sampler = v.pids.length ? startRssSampler(v.pids) : null;
      const { result, cpuPct, loadGenCpuPct } = await withCpu(v.pids, () => fetchAll(v.urls, v.headers));
      result.loadGenCpuPct = round(loadGenCpuPct, 0);
      const rss = sampler ? await sampler.stop() : null;
      result.payloadMiBPerSec = round((result.reqPerSec * FILE_BYTES) / MiB, 1);
      result.peakRssMiB = rss ? round(rss.peakBytes / MiB, 1) : null;
      result.serverCpuPct = v.pids.length ? round(cpuPct, 0) : null;
      runs[v.key].push(result);
      console.log(
        `  run ${i + 1} ${v.label}: ${round(result.reqPerSec, 0)} req/s, ${result.payloadMiBPerSec} MiB/s, p99 ${result.p99Ms} ms, errors ${result.errors}`,
      );
    }
  }
  const summary = {
    files: F,
    fileBytes: FILE_BYTES,
    connections: CONNECTIONS,
    pageCacheDropped: dropped,
    variants: {},
  };
  for (const v of variants) {
    const rs = runs[v.key];
    summary.variants[v.key] = {
      label: v.label,
      reqPerSec: round(median(rs.map((r) => r.reqPerSec)), 0),
      payloadMiBPerSec: round(median(rs.map((r) => r.payloadMiBPerSec)), 1),
      latencyP50Ms: median(rs.map((r) => r.p50Ms)),
      latencyP99Ms: median(rs.map((r) => r.p99Ms)),
      loadGenCpuPct: median(rs.map((r) => r.loadGenCpuPct)),
      failures: rs.reduce((a, r) => a + r.errors, 0),
      peakRssMiB: rs[0].peakRssMiB === null ? null : Math.max(...rs.map((r) => r.peakRssMiB)),
    };
  }
  if (summary.variants.nginx)
    summary.variants.ours.ratioToNginx = ratio(summary.variants.ours.reqPerSec, summary.variants.nginx.reqPerSec);
  printTable(
    `download-cold (median of ${reps}; page cache ${dropped ? 'dropped before each run' : 'NOT dropped (not permitted): files may be in memory'})`,
    ['server', 'req/s', 'MiB/s', 'p50 ms', 'p99 ms', 'load gen CPU %', 'failed', 'peak RSS MiB', 'ratio/nginx'],
    variants.map((v) => {
      const s = summary.variants[v.key];
      return [
        v.label,
        s.reqPerSec,
        s.payloadMiBPerSec,
        s.latencyP50Ms,
        s.latencyP99Ms,
        s.loadGenCpuPct,
        s.failures,
        s.peakRssMiB,
        s.ratioToNginx ?? null,
      ];
    }),
  );
  console.log(SHARED_CORES_NOTE);
  const file = writeResult('download-cold', { target: target.name, reps, summary, runs }, suffix);
  console.log(`wrote ${file}`);
  return summary;
}
