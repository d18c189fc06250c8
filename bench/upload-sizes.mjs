// upload-sizes: uploads of 1 KiB, 1 MiB and 100 MiB through the spec endpoint, C at a time, for
// the measurement's duration (100 MiB: a fixed count instead). Baseline, with the same
// concurrency on the same bytes: `sha256sum FILE && cp FILE DEST` per upload, the least a
// shell script storing files by hash would do (it neither fsyncs nor answers over HTTP; we do
// both). Reports uploads/s, MiB/s, latency p50/p99, errors and the server's peak RSS.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendBody, bodyBytes, MiB } from './lib/http.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { withCpu } from './lib/proc.mjs';
import { percentile } from './lib/images.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

const SIZES = [
  { label: '1 KiB', bytes: 1024, concurrency: 16 },
  { label: '1 MiB', bytes: MiB, concurrency: 8 },
  { label: '100 MiB', bytes: 100 * MiB, concurrency: 2, count: 6 },
];

/** Runs `one()` from `concurrency` loops until `seconds` pass (or `count` are done). */
async function loops({ concurrency, seconds, count, one }) {
  const lat = [];
  let errors = 0;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (count ? started < count : performance.now() < deadline) {
        started++;
        const s = performance.now();
        try {
          if (await one()) lat.push(performance.now() - s);
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    done: lat.length,
    errors,
    elapsedS: elapsed,
    perSec: lat.length / elapsed,
    p50Ms: round(percentile(lat, 50), 1),
    p99Ms: round(percentile(lat, 99), 1),
  };
}

function shellStore(src, dest) {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', 'sha256sum "$1" >/dev/null && cp "$1" "$2"', 'sh', src, dest], { stdio: 'ignore' });
    p.on('exit', (code) => resolve(code === 0));
    p.on('error', () => resolve(false));
  });
}

export async function runUploadSizes(ctx) {
  const { target, reps, durationS, workDir, suffix } = ctx;
  const scratch = join(workDir, 'upload-sizes');
  mkdirSync(scratch, { recursive: true });
  // A fresh keep-alive pool per measurement: sockets left idle through the baseline's run
  // would be closed by the server's idle timeout and fail on their first reuse.
  let agent = null;
  const url = `${target.url}/_matrix/media/v3/upload`;
  const headers = { Host: target.host, Authorization: `Bearer ${target.token}` };
  const pids = () => (target.pid ? [target.pid] : []);
  const summary = { sizes: {} };
  try {
    const wanted = ctx.uploadSizes;
    for (const size of SIZES.filter((x) => !wanted || wanted.includes(x.label.replace(/\s+/g, '')))) {
      const count = size.count ? (ctx.smoke ? 2 : size.count) : 0;
      console.log(
        `\n== upload-sizes ${size.label}: ${size.concurrency} at a time, ${count ? `${count} uploads` : `${durationS} s`}, ${reps} runs`,
      );
      const src = join(scratch, `src-${size.bytes}`);
      writeFileSync(src, bodyBytes(size.bytes));
      let n = 0;
      const variants = {
        ours: () =>
          sendBody({ url, headers, size: size.bytes, agent: agent ?? undefined }).then((r) => r.status === 200),
        shell: () => shellStore(src, join(scratch, `copy-${n++ % 64}`)),
      };
      const runs = { ours: [], shell: [] };
      for (let i = 0; i < reps; i++) {
        for (const key of i % 2 ? ['shell', 'ours'] : ['ours', 'shell']) {
          agent?.destroy();
          agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
          const sampler = key === 'ours' && pids().length ? startRssSampler(pids()) : null;
          const { result, cpuPct, loadGenCpuPct } = await withCpu(key === 'ours' ? pids() : [], () =>
            loops({ concurrency: size.concurrency, seconds: durationS, count, one: variants[key] }),
          );
          const rss = sampler ? await sampler.stop() : null;
          result.mibPerSec = round((result.perSec * size.bytes) / MiB, 1);
          result.peakRssMiB = rss ? round(rss.peakBytes / MiB, 1) : null;
          result.serverCpuPct = key === 'ours' ? round(cpuPct, 0) : null;
          // The shell baseline's work is in finished children, so it counts here for that side.
          result.loadGenCpuPct = round(loadGenCpuPct, 0);
          runs[key].push(result);
          console.log(
            `  run ${i + 1} ${key}: ${round(result.perSec, 1)}/s, ${result.mibPerSec} MiB/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors}`,
          );
        }
      }
      const pick = (rs) => ({
        perSec: round(median(rs.map((r) => r.perSec)), 1),
        mibPerSec: round(median(rs.map((r) => r.mibPerSec)), 1),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        errors: rs.reduce((a, r) => a + r.errors, 0),
        peakRssMiB: rs.some((r) => r.peakRssMiB) ? Math.max(...rs.map((r) => r.peakRssMiB ?? 0)) : null,
        serverCpuPct: median(rs.map((r) => r.serverCpuPct).filter((x) => x !== null)),
        loadGenCpuPct: median(rs.map((r) => r.loadGenCpuPct)),
      });
      const s = {
        bytes: size.bytes,
        concurrency: size.concurrency,
        count,
        ours: pick(runs.ours),
        shell: pick(runs.shell),
      };
      s.ratio = ratio(s.ours.perSec, s.shell.perSec);
      summary.sizes[size.label] = s;
      rmSync(src, { force: true });
    }
  } finally {
    agent?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
  printTable(
    `upload-sizes (median of ${reps}; baseline: sha256sum + cp per upload, same concurrency)`,
    [
      'size',
      'ours/s',
      'MiB/s',
      'p50 ms',
      'p99 ms',
      'errors',
      'server CPU %',
      'client CPU %',
      'peak RSS MiB',
      'shell/s',
      'shell p99 ms',
      'ratio',
    ],
    Object.entries(summary.sizes).map(([label, s]) => [
      label,
      s.ours.perSec,
      s.ours.mibPerSec,
      s.ours.p50Ms,
      s.ours.p99Ms,
      s.ours.errors,
      s.ours.serverCpuPct,
      s.ours.loadGenCpuPct,
      s.ours.peakRssMiB,
      s.shell.perSec,
      s.shell.p99Ms,
      s.ratio,
    ]),
  );
  console.log(SHARED_CORES_NOTE);
  summary.errors = Object.values(summary.sizes).reduce((a, s) => a + s.ours.errors, 0);
  const file = writeResult('upload-sizes', { target: target.name, reps, summary }, suffix);
  console.log(`wrote ${file}`);
  return summary;
}
