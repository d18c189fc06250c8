#!/usr/bin/env node
// Benchmark runner: `npm run bench [-- FAMILY|SCENARIO ...] [options]`. See bench/README.md.
import { parseArgs } from 'node:util';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, ensureBuilt, startOurRepo, externalTarget } from './lib/repo.mjs';
import { startNginx } from './lib/nginx.mjs';
import { installCleanup, stopAll } from './lib/proc.mjs';
import { printProfiles } from './lib/profile.mjs';
import { machineInfo, setResultsDir } from './lib/report.mjs';
import { writeSuiteReport } from './lib/suite-report.mjs';
import { UPLOAD_SCENARIOS, runUploads } from './upload.mjs';
import { DOWNLOAD_SCENARIOS, runDownloads } from './download.mjs';
import { THUMBNAIL_SCENARIOS, THUMBNAIL_OVERRIDES, runThumbnails } from './thumbnail.mjs';
import { REMOTE_SCENARIOS, runRemote } from './remote.mjs';
import { PREVIEW_SCENARIOS, runPreview } from './preview.mjs';
import { MIXED_SCENARIOS, runMixed } from './mixed.mjs';
import { MEMORY_SCENARIOS, runMemory } from './memory.mjs';
import { PURGE_SCENARIOS, runPurge } from './purge.mjs';
import { QUOTA_SCENARIOS, runUploadQuotas } from './upload-quotas.mjs';
import { RATELIMIT_SCENARIOS, runDownloadRateLimit } from './download-ratelimit.mjs';
import { MMR_ADOPT_SCENARIOS, runMmrAdopt } from './mmr-adopt.mjs';
import { SYNAPSE_IMPORT_SCENARIOS, runSynapseImport } from './synapse-import.mjs';
import { HEIC_SCENARIOS, runHeicThumbnails } from './heic-thumbnails.mjs';
import { EXPORT_ARCHIVE_SCENARIOS, runExportArchive } from './export-archive.mjs';
import { THREAD_SCALING_SCENARIOS, runThreadScaling } from './thread-scaling.mjs';

// Families in run order: a family name on the command line selects all of its scenarios.
const FAMILIES = {
  upload: [UPLOAD_SCENARIOS, runUploads],
  download: [DOWNLOAD_SCENARIOS, runDownloads],
  thumbnail: [THUMBNAIL_SCENARIOS, runThumbnails],
  remote: [REMOTE_SCENARIOS, runRemote],
  preview: [PREVIEW_SCENARIOS, runPreview],
  mixed: [MIXED_SCENARIOS, runMixed],
  memory: [MEMORY_SCENARIOS, runMemory],
  purge: [PURGE_SCENARIOS, runPurge],
  quotas: [QUOTA_SCENARIOS, runUploadQuotas],
  ratelimit: [RATELIMIT_SCENARIOS, runDownloadRateLimit],
  'mmr-adopt': [MMR_ADOPT_SCENARIOS, runMmrAdopt],
  'synapse-import': [SYNAPSE_IMPORT_SCENARIOS, runSynapseImport],
  'export-archive': [EXPORT_ARCHIVE_SCENARIOS, runExportArchive],
  heic: [HEIC_SCENARIOS, runHeicThumbnails],
  threads: [THREAD_SCALING_SCENARIOS, runThreadScaling],
};
const ALL = Object.values(FAMILIES).flatMap(([names]) => names);

const USAGE = `usage: node bench/run.mjs [${Object.keys(FAMILIES).join('|')}|SCENARIO ...] [options]

scenarios: ${ALL.join(', ')} (default: all)

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
                     baseline's concurrency (default: the number of cores); preview-uncached
                     (default 8) and mixed (default 16): request loops
  --max-requests N   mixed: stop after N requests even before --duration
  --files N          mixed: files uploaded before the load (default 300)
  --size-mib M       remote-cold: file size (default 50)
  --sizes LIST       upload-sizes: only these sizes, e.g. 1KiB or 1KiB,1MiB
  --threads LIST     thread-scaling: HTTP thread counts (default 1,2,4,8,16)
  --smoke            tiny bounds for a quick check that everything runs: 1 rep of 1 s,
                     mixed with 30 files and at most 2000 requests, remote-cold 2 MiB,
                     upload-1gib-rss 64 MiB
                     (explicit options still win)
  --results DIR      write result files and the report there (default bench/results)
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
    reps: { type: 'string' },
    duration: { type: 'string' },
    chunked: { type: 'boolean', default: false },
    concurrency: { type: 'string' },
    cli: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    'cpu-prof': { type: 'boolean', default: false },
    build: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    'max-requests': { type: 'string' },
    files: { type: 'string' },
    'size-mib': { type: 'string' },
    sizes: { type: 'string' },
    threads: { type: 'string' },
    results: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

const scenarios = new Set();
for (const p of positionals.length ? positionals : Object.keys(FAMILIES)) {
  if (FAMILIES[p]) FAMILIES[p][0].forEach((x) => scenarios.add(x));
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
// --smoke only changes defaults: an explicit --reps or --duration still applies.
const smoke = opt.smoke;
const reps = Math.max(1, Number(opt.reps) || (smoke ? 1 : 3));
const durationS = Math.max(1, Number(opt.duration) || (smoke ? 1 : 10));
const mixedFiles = Math.max(1, Number(opt.files) || (smoke ? 30 : 300));
const maxRequests = Number(opt['max-requests']) || (smoke ? 2000 : Infinity);
const sizeMiB = Number(opt['size-mib']) || (smoke ? 2 : 50);
const bigUploadBytes = (smoke ? 64 : 1024) * 1024 * 1024; // upload-1gib-rss
if (opt.results) setResultsDir(resolve(opt.results));

installCleanup();
const startedAt = new Date();
const workDir = join(ROOT, 'bench', '.work', `run-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(workDir, { recursive: true });

let target;
let nginx;
let failed = false;
const results = {};
const skipped = [];
const failures = [];
try {
  const m = machineInfo();
  console.log(
    `media-repo bench: ${m.cpus} cores (${m.cpuModel}), node ${m.node}, nginx ${m.nginx}, wrk ${m.wrk}, load average ${m.loadavgAtStart.join(' ')}`,
  );
  console.log(`work dir ${workDir}; scenarios: ${[...scenarios].join(', ')}; ${reps} x ${durationS} s`);
  if (opt.target) {
    target = externalTarget({ url: opt.target, token: opt.token, host: opt.host, pid: opt.pid });
  } else {
    if (!opt.cli) ensureBuilt(opt.build);
    // Thumbnail scenarios: no background thumbnails after uploads, no 429 from the queue
    // (--set comes after these, so it can override them).
    const thumbs = THUMBNAIL_SCENARIOS.some((s) => scenarios.has(s)) ? THUMBNAIL_OVERRIDES : [];
    target = await startOurRepo(join(workDir, 'repo'), {
      postgres: opt.postgres,
      cpuProf: opt['cpu-prof'],
      cli: opt.cli ? resolve(opt.cli) : undefined,
      overrides: [...thumbs, ...opt.set],
    });
    console.log(`media-repo pid ${target.pid} at ${target.url} (${target.database})`);
  }
  if (!opt.target || opt.nginx) {
    nginx = await startNginx(join(workDir, 'nginx'));
    console.log(`nginx pid ${nginx.pid} at ${nginx.url} (worker_processes 2)`);
  } else {
    console.log('no nginx baseline (add --nginx for one)');
  }
  const ctx = {
    target,
    nginx,
    reps,
    durationS,
    chunked: opt.chunked,
    workDir,
    concurrency: Number(opt.concurrency) || 0,
    external: !!opt.target,
    postgres: opt.postgres,
    overrides: opt.set,
    smoke,
    mixedFiles,
    maxRequests,
    sizeMiB,
    threadCounts: opt.threads ? opt.threads.split(',').map(Number) : null,
    uploadSizes: opt.sizes ? opt.sizes.split(',').map((x) => x.trim().replace(/\s+/g, '')) : null,
    bigUploadBytes,
    suffix: opt.target
      ? 'target'
      : [
          opt.postgres && 'postgres',
          opt.cli && 'cli',
          opt.set.length && 'set',
          opt.concurrency && `c${opt.concurrency}`,
          opt['cpu-prof'] && 'cpuprof',
          smoke && 'smoke',
        ]
          .filter(Boolean)
          .join('-'),
  };
  // One family at a time (a family's scenarios may share a server, as the preview ones do),
  // with progress lines around each; a failed family is reported and the others still run,
  // so one breakage does not cost the whole run's figures.
  const groups = Object.values(FAMILIES)
    .map(([names, run]) => [names.filter((x) => scenarios.has(x)), run])
    .filter(([names]) => names.length);
  const total = groups.reduce((a, [names]) => a + names.length, 0);
  let n = 0;
  for (const [names, run] of groups) {
    const t0 = performance.now();
    const first = n + 1;
    n += names.length;
    const tag = names.length > 1 ? `[${first}-${n}/${total}]` : `[${n}/${total}]`;
    console.log(`\n${tag} ${names.join(', ')}: starting (${new Date().toISOString().slice(11, 19)} UTC)`);
    try {
      const out = await run(ctx, names);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      for (const name of names) {
        if (out[name]) results[name] = out[name];
        else skipped.push({ name, why: ctx.external ? 'not runnable against --target' : 'no result' });
      }
      console.log(`${tag} ${names.map((x) => `${x} ${out[x] ? 'done' : 'skipped'}`).join(', ')} in ${secs} s`);
    } catch (e) {
      for (const name of names) failures.push({ name, error: e.message.split('\n')[0] });
      failed = true;
      console.error(`${tag} ${names.join(', ')}: FAILED: ${e.stack ?? e.message}`);
      process.exitCode = 1;
    }
  }
} catch (e) {
  failed = true;
  console.error(`\nbench failed: ${e.stack ?? e.message}`);
  process.exitCode = 1;
} finally {
  await nginx?.stop().catch(() => {});
  await target?.stop().catch(() => {});
  await stopAll();
  if (target?.profDir) printProfiles(target.profDir);
  if (Object.keys(results).length || failures.length || skipped.length) {
    try {
      const files = await writeSuiteReport(results, {
        target: target?.name ?? 'none',
        database: target?.database ?? 'none',
        reps,
        durationS,
        smoke,
        skipped,
        failed: failures,
        startedAt,
      });
      console.log(`\nreport: ${files.md}\n        ${files.json}\n        ${files.png}`);
    } catch (e) {
      console.error(`could not write the report: ${e.stack ?? e.message}`);
      process.exitCode = 1;
    }
  }
  if (failed || opt.keep || opt['cpu-prof']) console.log(`\nkept ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
}
