// Download scenarios: one 1 KiB and one 1 MiB file, loaded at 64 connections on our legacy
// (unauthenticated) and authenticated URLs, next to nginx serving the same bytes from disk.
import { bodyBytes, specUpload, httpGet, downloadRequests, MiB } from './lib/http.mjs';
import { runAutocannon, runWrk, AUTOCANNON_WORKERS } from './lib/load.mjs';
import { withCpu } from './lib/proc.mjs';
import { join } from 'node:path';
import { startOurRepo } from './lib/repo.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { runDownloadCold } from './download-cold.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

export const DOWNLOAD_SCENARIOS = ['download-1kib', 'download-1mib', 'download-cold'];

const SPECS = {
  'download-1kib': { size: 1024, tool: 'autocannon', target: 0.5 },
  'download-1mib': { size: MiB, tool: 'wrk', target: 0.8 },
};

async function verify(url, headers, bytes, label) {
  const r = await httpGet(url, { headers });
  if (r.status !== 200 || !r.body.equals(bytes)) {
    throw new Error(
      `${label}: GET ${url} answered ${r.status} with ${r.body.length} bytes, expected the ${bytes.length} uploaded`,
    );
  }
}

async function downloadScenario(name, { target, nginx, reps, durationS, suffix }, noCache) {
  const { size, tool, target: goal } = SPECS[name];
  const connections = 64;
  console.log(
    `\n== ${name}: ${size} byte file, ${tool} at ${connections} connections for ${durationS} s, ${reps} runs`,
  );
  const bytes = bodyBytes(size);
  const media = await specUpload(target, { bytes });
  const reqs = downloadRequests(target, media);
  const variants = [];
  if (nginx) {
    const path = nginx.putStatic(`file-${size}.bin`, bytes);
    variants.push({
      key: 'nginx',
      label: 'nginx (static file)',
      url: nginx.url + path,
      headers: { host: target.host },
      pids: nginx.pids,
    });
  }
  if (target.legacyDownload) {
    variants.push({
      key: 'legacy',
      label: `${target.name} legacy (no auth)`,
      url: target.url + reqs.legacy.path,
      headers: reqs.legacy.headers,
      pids: () => (target.pid ? [target.pid] : []),
    });
  }
  variants.push({
    key: 'authed',
    label: `${target.name} authenticated`,
    url: target.url + reqs.authed.path,
    headers: reqs.authed.headers,
    pids: () => (target.pid ? [target.pid] : []),
  });
  if (noCache) {
    const m = await specUpload(noCache, { bytes });
    const r = downloadRequests(noCache, m);
    variants.push({
      key: 'authedNoCache',
      label: `${noCache.name} authenticated, cache off`,
      url: noCache.url + r.authed.path,
      headers: r.authed.headers,
      pids: () => [noCache.pid],
    });
  }
  for (const v of variants) await verify(v.url, v.headers, bytes, v.label);

  const load = (v, d) =>
    tool === 'wrk'
      ? runWrk({ url: v.url, headers: v.headers, threads: 2, connections, durationS: d })
      : runAutocannon({ url: v.url, headers: v.headers, connections, durationS: d, workers: AUTOCANNON_WORKERS });
  // Short warm-up of each (JIT, page cache, connection setup); no longer than a measurement,
  // so --smoke stays short.
  for (const v of variants) await load(v, Math.min(2, durationS));

  const runs = Object.fromEntries(variants.map((v) => [v.key, []]));
  for (let i = 0; i < reps; i++) {
    // Rotate the order each round so no variant always runs first or last.
    const order = variants.map((_, j) => variants[(i + j) % variants.length]);
    for (const v of order) {
      const ourPids = v.key === 'nginx' ? [] : v.pids();
      const sampler = ourPids.length ? startRssSampler(ourPids) : null;
      const { result, cpuPct, loadGenCpuPct } = await withCpu(v.pids, () => load(v, durationS));
      result.loadGenCpuPct = round(loadGenCpuPct, 0);
      const rss = sampler ? await sampler.stop() : null;
      result.peakRssMiB = rss ? round(rss.peakBytes / MiB, 1) : null;
      result.serverCpuPct = round(cpuPct, 0);
      result.payloadMiBPerSec = round((result.reqPerSec * size) / MiB, 1);
      runs[v.key].push(result);
      const bad = result.non2xx || result.errors || result.timeouts;
      console.log(
        `  run ${i + 1} ${v.label}: ${round(result.reqPerSec, 0)} req/s, ${result.payloadMiBPerSec} MiB/s, p99 ${result.latencyP99} ms, server CPU ${result.serverCpuPct ?? '-'}%, load generator CPU ${result.loadGenCpuPct}%${bad ? `, non2xx ${result.non2xx} errors ${result.errors} timeouts ${result.timeouts}` : ''}`,
      );
    }
  }
  const summary = {
    size,
    tool,
    connections,
    durationS,
    autocannonWorkers: tool === 'autocannon' ? AUTOCANNON_WORKERS : undefined,
    goal,
    variants: {},
  };
  for (const v of variants) {
    const rs = runs[v.key];
    const rps = median(rs.map((r) => r.reqPerSec));
    summary.variants[v.key] = {
      label: v.label,
      reqPerSec: round(rps, 0),
      payloadMiBPerSec: round((rps * size) / MiB, 1),
      latencyP50Ms: median(rs.map((r) => r.latencyP50)),
      latencyP99Ms: median(rs.map((r) => r.latencyP99)),
      serverCpuPct: median(rs.map((r) => r.serverCpuPct)),
      loadGenCpuPct: median(rs.map((r) => r.loadGenCpuPct)),
      peakRssMiB: rs.some((r) => r.peakRssMiB) ? Math.max(...rs.map((r) => r.peakRssMiB ?? 0)) : null,
      failures: rs.reduce((a, r) => a + (r.non2xx || 0) + (r.errors || 0) + (r.timeouts || 0), 0),
    };
  }
  const base = summary.variants.nginx?.reqPerSec;
  for (const v of variants)
    if (v.key !== 'nginx')
      summary.variants[v.key].ratioToNginx = base ? ratio(summary.variants[v.key].reqPerSec, base) : null;
  printTable(
    `${name} (median of ${reps}; ${tool}${tool === 'autocannon' ? ` with ${AUTOCANNON_WORKERS} workers` : ' -t2'} -c${connections}; target ratio >= ${goal})`,
    ['server', 'req/s', 'MiB/s', 'p99 ms', 'server CPU %', 'load gen CPU %', 'peak RSS MiB', 'failed', 'ratio/nginx'],
    variants.map((v) => {
      const s = summary.variants[v.key];
      return [
        v.label,
        s.reqPerSec,
        s.payloadMiBPerSec,
        s.latencyP99Ms,
        s.serverCpuPct,
        s.loadGenCpuPct,
        s.peakRssMiB,
        s.failures,
        v.key === 'nginx' ? null : s.ratioToNginx,
      ];
    }),
  );
  console.log(SHARED_CORES_NOTE);
  const file = writeResult(name, { target: target.name, database: target.database, reps, summary, runs }, suffix);
  console.log(`wrote ${file}`);
  return summary;
}

/**
 * Our server runs with downloads.cache at its default (on); beside it, in the same run, a
 * second one of ours with the cache off serves the same bytes, so each table shows cache on,
 * cache off and nginx together. Not with --target (we cannot start a copy of someone else's),
 * nor with --smoke.
 */
export async function runDownloads(ctx, scenarios) {
  const out = {};
  // --smoke checks that scenarios run; a second server (its own database start) would double
  // the download family's cost there for a variant that only repeats the same code path.
  const hot = ['download-1kib', 'download-1mib'].filter((s) => scenarios.includes(s));
  const noCache =
    ctx.external || ctx.smoke || !hot.length
      ? null
      : await startOurRepo(join(ctx.workDir, 'repo-nocache'), {
          postgres: ctx.postgres,
          overrides: [...ctx.overrides, 'downloads.cache.enabled=false'],
        });
  try {
    for (const s of hot) out[s] = await downloadScenario(s, ctx, noCache);
  } finally {
    await noCache?.stop();
  }
  if (scenarios.includes('download-cold')) out['download-cold'] = await runDownloadCold(ctx);
  return out;
}
