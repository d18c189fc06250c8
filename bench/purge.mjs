#!/usr/bin/env node
// purge: what a purge of many rows costs in time and memory. A server of ours is started in
// this process (the pipelines are called through its services; RSS is this process's), then
// for each scenario N media rows of a remote origin are written straight into the database
// (INSERT ... SELECT FROM unnest, in chunks) on real blob files: half the rows have a blob of
// their own, the other half share one blob per pair, the two rows of a pair N/4 apart in key
// order (so a shared blob outlives the first batch that drops one of its rows). Then:
// - purge-100k: the admin pipeline's purge of that server's media (purgeSelection, as
//   POST …/admin/purge/server/{server} runs it);
// - expiry-100k: the same rows back-dated 40 days, plus 1000 recent ones, and one run of the
//   hourly media_expiry task (downloads.expireAfterDays 30) through the task runner.
// Both check that every row and blob that should go went and the rest stayed, time it, and
// sample this process's RSS every 20 ms (peak growth over the idle reading just before; goal
// < 32 MiB). With PGlite the database lives in this process and is counted; with --postgres
// it is not.
//
// Standalone: node bench/purge.mjs [purge-100k|expiry-100k ...] [--rows N] [--postgres DSN] [--smoke]; or through
// bench/run.mjs: npm run bench -- purge
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ROOT, ensureBuilt } from './lib/repo.mjs';
import { startRssSampler, idleRss } from './lib/rss.mjs';
import { startInProcessRepo } from './lib/in-process.mjs';
import { printTable, round, writeResult } from './lib/report.mjs';

export const PURGE_SCENARIOS = ['purge-100k', 'expiry-100k'];

const MiB = 1024 * 1024;
const DAY = 86_400_000;
const HOST = 'bench.local';
const CHUNK = 5000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', 'src', p)).href);
// A full collection before each idle reading, so the seeding's garbage is not in the baseline
// (and then collected during the measurement, hiding growth).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

/** Starts our server in-process over a fresh database; returns { repo, mediaDir, stop }. */
async function startInProcess(dir, postgres) {
  const mediaDir = join(dir, 'media');
  const server = await startInProcessRepo(dir, postgres, HOST, {
    datastores: [{ id: 'bench', type: 'file', forKinds: ['all'], opts: { path: mediaDir } }],
    downloads: { expireAfterDays: 30 },
  });
  return { ...server, mediaDir };
}

/**
 * Writes `rows` media rows of `origin` created at `creationTs` and their blob files (3/4 as
 * many: the second half of the rows share blobs in pairs). Returns the number of files.
 */
async function seed(db, mediaDir, { origin, rows, creationTs, prefix }) {
  const half = Math.floor(rows / 2);
  const quarter = Math.max(1, Math.floor((rows - half) / 2));
  const files = half + Math.min(quarter, rows - half);
  const dirs = new Set();
  const blobs = [];
  for (let j = 0; j < files; j++) {
    const bytes = Buffer.from(`${origin} ${prefix} blob ${j} ${randomBytes(8).toString('hex')}`);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const rel = `${sha.slice(0, 2)}/${sha.slice(2, 4)}`;
    if (!dirs.has(rel)) {
      mkdirSync(join(mediaDir, rel), { recursive: true });
      dirs.add(rel);
    }
    writeFileSync(join(mediaDir, rel, sha), bytes);
    blobs.push({ sha, location: `${rel}/${sha}`, size: bytes.length });
  }
  for (let i = 0; i < rows; i += CHUNK) {
    const n = Math.min(CHUNK, rows - i);
    const ids = [];
    const shas = [];
    const sizes = [];
    const locations = [];
    for (let k = i; k < i + n; k++) {
      const b = blobs[k < half ? k : half + ((k - half) % quarter)];
      ids.push(`${prefix}${String(k).padStart(7, '0')}`);
      shas.push(b.sha);
      sizes.push(b.size);
      locations.push(b.location);
    }
    await db.query(
      `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes, datastore_id, location, creation_ts)
       SELECT $1, id, NULL, 'application/octet-stream', '', sha, size, 'bench', loc, $2
       FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[]) AS r(id, sha, size, loc)`,
      [origin, creationTs, ids, shas, sizes, locations],
    );
  }
  return files;
}

function countFiles(dir) {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(join(dir, e.name)) : 1;
  return n;
}

async function rowsOf(db, origin) {
  const r = await db.query('SELECT count(*) AS n FROM media WHERE origin = $1', [origin]);
  return Number(r.rows[0].n);
}

/**
 * Runs fn while sampling this process's RSS (from a worker thread) and its JS heap (here);
 * { ms, before, growth, heapGrowth, result }.
 */
async function measured(fn) {
  gc();
  await sleep(200);
  gc();
  const before = await idleRss([process.pid]);
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = heapBefore;
  const heapTimer = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 20);
  const sampler = startRssSampler([process.pid]);
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  const rss = await sampler.stop();
  clearInterval(heapTimer);
  return { ms, before, growth: rss.peakBytes - before, heapGrowth: heapPeak - heapBefore, result };
}

async function purgeScenario(s, rows) {
  const { purgeSelection } = await dist('pipelines/admin/purge.js');
  const db = s.repo.services.db;
  const origin = 'purge.remote.test';
  const t0 = performance.now();
  const files = await seed(db, s.mediaDir, { origin, rows, creationTs: Date.now() - DAY, prefix: 'p' });
  console.log(`  seeded ${rows} rows on ${files} blob files in ${round((performance.now() - t0) / 1000, 1)} s`);
  const w = s.repo.services;
  const deps = { config: w.config, db: w.db, datastores: w.datastores, invalidator: w.invalidator, log: w.log };
  const actor = { userId: '@admin:bench.local', serverName: HOST, scopeOrigin: null };
  const m = await measured(() =>
    purgeSelection(deps, actor, {
      action: 'purge_server',
      target: origin,
      selection: { origin, createdBefore: Date.now() },
    }),
  );
  const left = await rowsOf(db, origin);
  const filesLeft = countFiles(s.mediaDir);
  const ok = m.result.total === rows && m.result.blobsDeleted === files && left === 0 && filesLeft === 0;
  return {
    rows,
    blobFiles: files,
    purged: m.result.total,
    blobsDeleted: m.result.blobsDeleted,
    rowsLeft: left,
    filesLeft,
    seconds: round(m.ms / 1000, 2),
    rowsPerSec: round(rows / (m.ms / 1000), 0),
    idleRssMiB: round(m.before / MiB, 1),
    peakGrowthMiB: round(m.growth / MiB, 1),
    heapPeakGrowthMiB: round(m.heapGrowth / MiB, 1),
    failures: ok ? 0 : 1,
  };
}

async function expiryScenario(s, rows) {
  const { MEDIA_EXPIRY } = await dist('tasks/expiry.js');
  const { getTask } = await dist('db/tasks.js');
  const db = s.repo.services.db;
  const origin = 'expire.remote.test';
  const recent = Math.min(1000, rows);
  const t0 = performance.now();
  const files = await seed(db, s.mediaDir, { origin, rows, creationTs: Date.now() - 40 * DAY, prefix: 'e' });
  const recentFiles = await seed(db, s.mediaDir, { origin, rows: recent, creationTs: Date.now() - DAY, prefix: 'r' });
  console.log(
    `  seeded ${rows} back-dated + ${recent} recent rows on ${files + recentFiles} blob files in ${round((performance.now() - t0) / 1000, 1)} s`,
  );
  const m = await measured(async () => {
    const id = await s.repo.services.tasks.enqueue(MEDIA_EXPIRY, {});
    for (;;) {
      const task = await getTask(db, id);
      if (task.endTs !== null) return task;
      await sleep(100);
    }
  });
  const prog = m.result.progress ?? {};
  const left = await rowsOf(db, origin);
  const filesLeft = countFiles(s.mediaDir);
  const ok = m.result.error === null && prog.remote_media === rows && left === recent && filesLeft === recentFiles;
  if (m.result.error) console.error(`  the expiry task failed: ${m.result.error}`);
  return {
    rows,
    recentRows: recent,
    blobFiles: files,
    purged: prog.remote_media ?? null,
    blobsDeleted: prog.blobs_deleted ?? null,
    rowsLeft: left,
    filesLeft,
    seconds: round(m.ms / 1000, 2),
    rowsPerSec: round(rows / (m.ms / 1000), 0),
    idleRssMiB: round(m.before / MiB, 1),
    peakGrowthMiB: round(m.growth / MiB, 1),
    heapPeakGrowthMiB: round(m.heapGrowth / MiB, 1),
    failures: ok ? 0 : 1,
  };
}

export async function runPurge(ctx, names = PURGE_SCENARIOS) {
  if (ctx.external) {
    console.log('\n== purge: skipped with --target (runs our pipelines in-process)');
    return {};
  }
  const rows = ctx.rows ?? (ctx.smoke ? 2000 : 100_000);
  const out = {};
  for (const name of names) {
    // A fresh server and database per scenario: neither sees the other's rows or memory.
    const s = await startInProcess(join(ctx.workDir, name), ctx.postgres);
    try {
      console.log(`\n== ${name}: ${rows} rows (${s.database}, in-process server)`);
      const summary = name === 'purge-100k' ? await purgeScenario(s, rows) : await expiryScenario(s, rows);
      summary.database = s.database;
      out[name] = summary;
      console.log(`wrote ${writeResult(name, { summary }, ctx.suffix)}`);
    } finally {
      await s.stop();
    }
  }
  const rowsOut = Object.entries(out).map(([name, x]) => [
    name,
    x.rows,
    x.blobFiles,
    x.seconds,
    x.rowsPerSec,
    x.peakGrowthMiB,
    x.heapPeakGrowthMiB,
    x.failures ? 'FAILED' : 'ok',
  ]);
  printTable(
    `purge (${Object.values(out)[0]?.database ?? '-'}; peak RSS growth of this process, goal < 32 MiB)`,
    ['scenario', 'rows', 'blob files', 'seconds', 'rows/s', 'peak RSS growth MiB', 'JS heap growth MiB', 'check'],
    rowsOut,
  );
  const failed = Object.entries(out).filter(([, x]) => x.failures);
  if (failed.length) throw new Error(`purge: ${failed.map(([n, x]) => `${n} ${JSON.stringify(x)}`).join('; ')}`);
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opt, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rows: { type: 'string' },
      postgres: { type: 'string', default: '' },
      smoke: { type: 'boolean', default: false },
    },
  });
  ensureBuilt();
  const workDir = join(tmpdir(), `media-repo-bench-purge-${randomBytes(4).toString('hex')}`);
  try {
    await runPurge(
      {
        workDir,
        postgres: opt.postgres,
        smoke: opt.smoke,
        rows: opt.rows ? Number(opt.rows) : undefined,
        suffix: [opt.postgres && 'postgres', opt.smoke && 'smoke'].filter(Boolean).join('-'),
      },
      positionals.length ? positionals.filter((x) => PURGE_SCENARIOS.includes(x)) : PURGE_SCENARIOS,
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.exit(0);
}
