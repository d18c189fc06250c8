// download-ratelimit: hot downloads with rateLimit on (generous limits, buckets shared through
// Redis) vs off, in the same run (issue 16's target: on >= 0.97 of off). Two fresh servers of
// this build, identical but for rateLimit and redis, measured in turns on a 1 KiB and a 1 MiB
// file. The legacy (unauthenticated) URL is used: its client is the IP, so every request takes
// a request token and a byte check and charge (the shared-secret token of the authenticated
// URL is a repo admin, whom limits never apply to).
import { join } from 'node:path';
import { specUpload, downloadRequests, MiB } from './lib/http.mjs';
import { runWrk } from './lib/load.mjs';
import { startOurRepo } from './lib/repo.mjs';
import { median, round, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

export const RATELIMIT_SCENARIOS = ['download-ratelimit'];

const SIZES = [
  { label: '1 KiB', bytes: 1024 },
  { label: '1 MiB', bytes: MiB },
];
const REDIS = process.env.MEDIA_REPO_BENCH_REDIS ?? '127.0.0.1:6379';
const LIMITS_ON = [
  'rateLimit.enabled=true',
  'rateLimit.requestsPerSecond=10000000',
  'rateLimit.burst=10000000',
  'rateLimit.buckets.downloads={capacityBytes: 1000000000000000, drainBytesPerMinute: 1000000000000000, overflowLimitBytes: 0}',
  'redis.enabled=true',
  'redis.databaseNumber=11',
  `redis.shards=[{name: bench, addr: "${REDIS}"}]`,
];

export async function runDownloadRateLimit(ctx) {
  if (ctx.external) return {};
  const { reps, durationS, workDir, suffix } = ctx;
  const opts = { postgres: ctx.postgres, overrides: ctx.overrides };
  const servers = {
    off: await startOurRepo(join(workDir, 'ratelimit-off'), opts),
    on: await startOurRepo(join(workDir, 'ratelimit-on'), { ...opts, overrides: [...ctx.overrides, ...LIMITS_ON] }),
  };
  const summary = { redis: REDIS, sizes: {} };
  try {
    for (const size of SIZES) {
      const bytes = Buffer.alloc(size.bytes, 7);
      const targets = {};
      for (const side of ['off', 'on']) {
        const media = await specUpload(servers[side], { bytes });
        const r = downloadRequests(servers[side], media).legacy;
        targets[side] = { url: servers[side].url + r.path, headers: r.headers };
        await runWrk({ ...targets[side], durationS: 2 }); // warm-up (admits it to the blob cache)
      }
      console.log(`\n== download-ratelimit ${size.label}: wrk -t2 -c64, ${durationS} s, ${reps} runs per side`);
      const runs = { off: [], on: [] };
      for (let i = 0; i < reps; i++) {
        for (const side of i % 2 ? ['on', 'off'] : ['off', 'on']) {
          const r = await runWrk({ ...targets[side], durationS });
          runs[side].push(r);
          console.log(`  run ${i + 1} rate limits ${side}: ${round(r.reqPerSec, 1)}/s, non-2xx ${r.non2xx}`);
        }
      }
      const pick = (rs) => ({
        perSec: round(median(rs.map((r) => r.reqPerSec)), 1),
        p99Ms: round(median(rs.map((r) => r.latencyP99 ?? 0)), 2),
        errors: rs.reduce((a, r) => a + r.non2xx + r.errors + r.timeouts, 0),
      });
      const s = { bytes: size.bytes, off: pick(runs.off), on: pick(runs.on) };
      s.ratio = s.off.perSec ? round(s.on.perSec / s.off.perSec, 3) : null;
      summary.sizes[size.label] = s;
    }
  } finally {
    await servers.off.stop();
    await servers.on.stop();
  }
  printTable(
    `download-ratelimit (median of ${reps}; target ratio on/off >= 0.97; Redis ${REDIS})`,
    ['size', 'off/s', 'on/s', 'on/off', 'p99 off ms', 'p99 on ms', 'errors'],
    Object.entries(summary.sizes).map(([label, s]) => [
      label,
      s.off.perSec,
      s.on.perSec,
      s.ratio,
      s.off.p99Ms,
      s.on.p99Ms,
      s.off.errors + s.on.errors,
    ]),
  );
  console.log(SHARED_CORES_NOTE);
  const file = writeResult('download-ratelimit', { reps, durationS, ...summary }, suffix);
  console.log(`wrote ${file}`);
  return { 'download-ratelimit': summary };
}
