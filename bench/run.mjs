#!/usr/bin/env node
// Benchmark runner: `npm run bench [-- FAMILY|SCENARIO ...] [options]`. See bench/README.md.
import { parseArgs } from 'node:util';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, ensureBuilt, startOurRepo, externalTarget } from './lib/repo.mjs';
import { startNginx } from './lib/nginx.mjs';
import { installCleanup, stopAll } from './lib/proc.mjs';
import { printProfiles } from './lib/profile.mjs';
import { machineInfo } from './lib/report.mjs';
import { UPLOAD_SCENARIOS, runUploads } from './upload.mjs';
import { DOWNLOAD_SCENARIOS, runDownloads } from './download.mjs';
import { THUMBNAIL_SCENARIOS, THUMBNAIL_OVERRIDES, runThumbnails } from './thumbnail.mjs';

const USAGE = `usage: node bench/run.mjs [upload|download|thumbnail|SCENARIO ...] [options]

scenarios: ${[...UPLOAD_SCENARIOS, ...DOWNLOAD_SCENARIOS, ...THUMBNAIL_SCENARIOS].join(', ')} (default: all)

options:
  --postgres DSN     run our server on Postgres (a fresh database is created in DSN's server
                     and dropped afterwards); default PGlite
  --target URL       bench an already-running Matrix media repo through spec endpoints only
  --token T          access token for --target (Bearer)
  --host NAME        Host header / server name for --target (default: URL's host)
  --pid PID          --target's process id, to sample its RSS and CPU (same machine)
  --nginx            with --target: also run the nginx baseline
  --reps N           repetitions per measurement, median reported (default 3)
  --duration S       seconds per measurement (default 10)
  --chunked          send the 1 GiB upload chunked instead of with Content-Length
  --concurrency C    thumb-uncached: thumbnail requests in flight, and the plain-sharp
                     baseline's concurrency (default: the number of cores)
  --cli PATH         start another build of media-repo (its dist/src/launcher.cjs), for A/B runs
  --set KEY=VALUE    override a key of our generated config (repeatable), e.g.
                     --set downloads.smallFileBytes=2097152
  --cpu-prof         run our server under node --cpu-prof and print its hot functions
  --build            rebuild dist/ first (done anyway when src/ is newer)
  --keep             keep bench/.work/run-* afterwards`;

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    postgres: { type: 'string', default: '' },
    target: { type: 'string' },
    token: { type: 'string' },
    host: { type: 'string' },
    pid: { type: 'string' },
    nginx: { type: 'boolean', default: false },
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    chunked: { type: 'boolean', default: false },
    concurrency: { type: 'string' },
    cli: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    'cpu-prof': { type: 'boolean', default: false },
    build: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

const ALL = [...UPLOAD_SCENARIOS, ...DOWNLOAD_SCENARIOS, ...THUMBNAIL_SCENARIOS];
const scenarios = new Set();
for (const p of positionals.length ? positionals : ['upload', 'download', 'thumbnail']) {
  if (p === 'upload') UPLOAD_SCENARIOS.forEach((s) => scenarios.add(s));
  else if (p === 'download') DOWNLOAD_SCENARIOS.forEach((s) => scenarios.add(s));
  else if (p === 'thumbnail') THUMBNAIL_SCENARIOS.forEach((s) => scenarios.add(s));
  else if (ALL.includes(p)) scenarios.add(p);
  else {
    console.error(`unknown scenario ${p}\n\n${USAGE}`);
    process.exit(2);
  }
}
if (opt.target && !opt.token) {
  console.error('--target needs --token');
  process.exit(2);
}
const reps = Math.max(1, Number(opt.reps) || 3);
const durationS = Math.max(1, Number(opt.duration) || 10);

installCleanup();
const workDir = join(ROOT, 'bench', '.work', `run-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(workDir, { recursive: true });

let target;
let nginx;
let failed = false;
try {
  const m = machineInfo();
  console.log(`media-repo bench: ${m.cpus} cores (${m.cpuModel}), node ${m.node}, nginx ${m.nginx}, wrk ${m.wrk}, load average ${m.loadavgAtStart.join(' ')}`);
  console.log(`work dir ${workDir}; scenarios: ${[...scenarios].join(', ')}; ${reps} x ${durationS} s`);
  if (opt.target) {
    target = externalTarget({ url: opt.target, token: opt.token, host: opt.host, pid: opt.pid });
  } else {
    if (!opt.cli) ensureBuilt(opt.build);
    // Thumbnail scenarios: no background thumbnails after uploads, no 429 from the queue
    // (--set comes after these, so it can override them).
    const thumbs = THUMBNAIL_SCENARIOS.some((s) => scenarios.has(s)) ? THUMBNAIL_OVERRIDES : [];
    target = await startOurRepo(join(workDir, 'repo'), { postgres: opt.postgres, cpuProf: opt['cpu-prof'], cli: opt.cli ? resolve(opt.cli) : undefined, overrides: [...thumbs, ...opt.set] });
    console.log(`media-repo pid ${target.pid} at ${target.url} (${target.database})`);
  }
  if (!opt.target || opt.nginx) {
    nginx = await startNginx(join(workDir, 'nginx'));
    console.log(`nginx pid ${nginx.pid} at ${nginx.url} (worker_processes 2)`);
  } else {
    console.log('no nginx baseline (add --nginx for one)');
  }
  const ctx = { target, nginx, reps, durationS, chunked: opt.chunked, workDir, concurrency: Number(opt.concurrency) || 0, suffix: opt.target ? 'target' : [opt.postgres && 'postgres', opt.cli && 'cli', opt.set.length && 'set', opt.concurrency && `c${opt.concurrency}`, opt['cpu-prof'] && 'cpuprof'].filter(Boolean).join('-') };
  await runUploads(ctx, [...scenarios]);
  await runDownloads(ctx, [...scenarios]);
  await runThumbnails(ctx, [...scenarios]);
} catch (e) {
  failed = true;
  console.error(`\nbench failed: ${e.stack ?? e.message}`);
  process.exitCode = 1;
} finally {
  await nginx?.stop().catch(() => {});
  await target?.stop().catch(() => {});
  await stopAll();
  if (target?.profDir) printProfiles(target.profDir);
  if (failed || opt.keep || opt['cpu-prof']) console.log(`\nkept ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
}
