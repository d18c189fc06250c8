// upload-quotas: upload throughput with uploads.quotas on vs off, in the same run (issue 16's
// target: on >= 0.97 of off). Two fresh servers of this build, identical but for the quota
// (one rule matching every user, limits far above what the run uploads, so every upload pays
// both checks and none is refused), measured in turns on 1 KiB bodies (per-request cost
// dominates: the worst case for two extra statements) and 1 MiB bodies.
import http from 'node:http';
import { join } from 'node:path';
import { sendBody, MiB } from './lib/http.mjs';
import { startOurRepo } from './lib/repo.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

export const QUOTA_SCENARIOS = ['upload-quotas'];

const SIZES = [
  { label: '1 KiB', bytes: 1024, concurrency: 16 },
  { label: '1 MiB', bytes: MiB, concurrency: 8 },
];
const QUOTA_ON = [
  'uploads.quotas.enabled=true',
  'uploads.quotas.users=[{glob: "*", maxBytes: 1099511627776, maxFiles: 100000000}]',
];

/** Uploads/s from `concurrency` loops for `seconds`. */
async function rate(target, size, concurrency, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = `${target.url}/_matrix/media/v3/upload`;
  const headers = { Host: target.host, Authorization: `Bearer ${target.token}` };
  let done = 0;
  let errors = 0;
  let firstError = null;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const r = await sendBody({ url, headers, size, agent }).catch((e) => ({ status: 0, body: e.message }));
          if (r.status === 200) done++;
          else {
            errors++;
            firstError ??= `status ${r.status}: ${r.body.slice(0, 200)}`;
          }
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return { perSec: done / ((performance.now() - t0) / 1000), errors, firstError };
}

export async function runUploadQuotas(ctx) {
  if (ctx.external) return {};
  const { reps, durationS, workDir, suffix } = ctx;
  const opts = { postgres: ctx.postgres, overrides: ctx.overrides };
  const servers = {
    off: await startOurRepo(join(workDir, 'quotas-off'), opts),
    on: await startOurRepo(join(workDir, 'quotas-on'), { ...opts, overrides: [...ctx.overrides, ...QUOTA_ON] }),
  };
  const summary = { sizes: {} };
  try {
    for (const size of SIZES) {
      console.log(
        `\n== upload-quotas ${size.label}: ${size.concurrency} at a time, ${durationS} s, ${reps} runs per side`,
      );
      const runs = { off: [], on: [] };
      for (let i = 0; i < reps; i++) {
        // Alternate who goes first, so neither side always inherits the other's writeback.
        for (const side of i % 2 ? ['on', 'off'] : ['off', 'on']) {
          const r = await rate(servers[side], size.bytes, size.concurrency, durationS);
          runs[side].push(r);
          console.log(
            `  run ${i + 1} quotas ${side}: ${round(r.perSec, 1)}/s, errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`,
          );
        }
      }
      const pick = (rs) => ({
        perSec: round(median(rs.map((r) => r.perSec)), 1),
        errors: rs.reduce((a, r) => a + r.errors, 0),
      });
      const s = { bytes: size.bytes, concurrency: size.concurrency, off: pick(runs.off), on: pick(runs.on) };
      s.ratio = ratio(s.on.perSec, s.off.perSec);
      // Each rep's two sides ran back to back: the median of those pairs' ratios is less
      // exposed to load that drifts over the run than the ratio of two medians.
      s.pairedRatio = round(median(runs.on.map((r, i) => r.perSec / runs.off[i].perSec)), 2);
      summary.sizes[size.label] = s;
    }
  } finally {
    await servers.off.stop();
    await servers.on.stop();
  }
  printTable(
    `upload-quotas (median of ${reps}; target ratio on/off >= 0.97; ${servers.off.database})`,
    ['size', 'off/s', 'on/s', 'on/off', 'paired on/off', 'errors'],
    Object.entries(summary.sizes).map(([label, s]) => [
      label,
      s.off.perSec,
      s.on.perSec,
      s.ratio,
      s.pairedRatio,
      s.off.errors + s.on.errors,
    ]),
  );
  console.log(SHARED_CORES_NOTE);
  const file = writeResult('upload-quotas', { reps, durationS, database: servers.off.database, ...summary }, suffix);
  console.log(`wrote ${file}`);
  return { 'upload-quotas': summary };
}
