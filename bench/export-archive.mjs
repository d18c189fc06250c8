#!/usr/bin/env node
// export-archive: what a GDPR export (the export_data task, MMR's v2 archive format) costs
// against `tar czf` of the same files in the same run. A server of ours is started in this
// process over a fresh database; N files of S MiB of random bytes (incompressible, as photos
// and videos are; 256 × 4 MiB = 1 GiB by default) are written straight into its media
// datastore with their rows, for one user. Then:
// - export-1gib: the export_data task through the task runner, its parts written into an
//   archives datastore (gzip level 6, node's zlib); checked: every file listed, parts complete;
// - baseline: `tar czf` (gzip -6) of the same blob files, timed the same way.
// Reports seconds, MiB/s, the ratio export / tar, and this process's peak RSS growth during the
// export (the goal is constant memory: far below one part's size).
//
// Standalone: node bench/export-archive.mjs [--files N] [--file-mib S] [--postgres DSN] [--smoke];
// or through bench/run.mjs: npm run bench -- export-archive
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ROOT, ensureBuilt } from './lib/repo.mjs';
import { startRssSampler, idleRss } from './lib/rss.mjs';
import { printTable, round, writeResult } from './lib/report.mjs';
import { startInProcessRepo } from './lib/in-process.mjs';

export const EXPORT_ARCHIVE_SCENARIOS = ['export-1gib'];

const MiB = 1024 * 1024;
const HOST = 'bench.local';
const USER = '@bench:bench.local';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', 'src', p)).href);

async function startInProcess(dir, postgres) {
  const mediaDir = join(dir, 'media');
  const archiveDir = join(dir, 'archives');
  const server = await startInProcessRepo(dir, postgres, HOST, {
    datastores: [
      { id: 'media', type: 'file', forKinds: ['local_media', 'remote_media', 'thumbnails'], opts: { path: mediaDir } },
      { id: 'archives', type: 'file', forKinds: ['archives'], opts: { path: archiveDir } },
    ],
  });
  return { ...server, mediaDir, archiveDir };
}

/** Writes `files` blob files of `bytes` random bytes and their media rows; returns their locations. */
async function seed(db, mediaDir, files, bytes) {
  const locations = [];
  for (let i = 0; i < files; i++) {
    const body = randomBytes(bytes);
    const sha = createHash('sha256').update(body).digest('hex');
    const rel = `${sha.slice(0, 2)}/${sha.slice(2, 4)}`;
    mkdirSync(join(mediaDir, rel), { recursive: true });
    writeFileSync(join(mediaDir, rel, sha), body);
    locations.push(`${rel}/${sha}`);
    await db.query(
      `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes, datastore_id, location, creation_ts)
       VALUES ($1, $2, $3, 'application/octet-stream', $4, $5, $6, 'media', $7, $8)`,
      [HOST, `bench${String(i).padStart(6, '0')}`, `file-${i}.bin`, USER, sha, bytes, `${rel}/${sha}`, Date.now()],
    );
  }
  return locations;
}

/** Runs fn while sampling this process's RSS; { ms, before, growth, result }. */
async function measured(fn) {
  await sleep(200);
  const before = await idleRss([process.pid]);
  const sampler = startRssSampler([process.pid]);
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  const rss = await sampler.stop();
  return { ms, before, growth: rss.peakBytes - before, result };
}

async function exportScenario(s, files, fileBytes) {
  const { EXPORT_DATA } = await dist('tasks/export-data.js');
  const { insertExport, exportParts } = await dist('db/exports.js');
  const { getTask } = await dist('db/tasks.js');
  const db = s.repo.services.db;
  const t0 = performance.now();
  const locations = await seed(db, s.mediaDir, files, fileBytes);
  const totalBytes = files * fileBytes;
  console.log(`  seeded ${files} files of ${fileBytes / MiB} MiB in ${round((performance.now() - t0) / 1000, 1)} s`);
  const exportId = randomBytes(24).toString('base64url');
  await insertExport(db, { exportId, entity: USER, origin: HOST, createdTs: Date.now() });
  const m = await measured(async () => {
    const id = await s.repo.services.tasks.enqueue(EXPORT_DATA, {
      export_id: exportId,
      entity: { user: USER, origin: HOST },
      entity_id: USER,
      part_bytes: 200 * MiB,
      datastore_ids: ['media', 'archives'],
      s3_urls: false,
    });
    for (;;) {
      const task = await getTask(db, id);
      if (task.endTs !== null) return task;
      await sleep(100);
    }
  });
  if (m.result.error) console.error(`  the export task failed: ${m.result.error}`);
  const parts = await exportParts(db, exportId);
  const partBytes = parts.reduce((n, p) => n + p.sizeBytes, 0);

  // Baseline: tar czf of the same blob files (gzip's default level 6, as ours).
  const out = join(s.archiveDir, '..', 'baseline.tgz');
  const list = join(s.archiveDir, '..', 'files.txt');
  writeFileSync(list, locations.join('\n') + '\n');
  const b0 = performance.now();
  const tar = spawnSync('tar', ['czf', out, '-C', s.mediaDir, '-T', list], { stdio: 'inherit' });
  const tarMs = performance.now() - b0;
  const tarBytes = tar.status === 0 ? statSync(out).size : 0;

  const ok =
    m.result.error === null && m.result.progress?.media === files && partBytes > totalBytes && tar.status === 0;
  return {
    files,
    fileMiB: fileBytes / MiB,
    totalMiB: round(totalBytes / MiB, 0),
    parts: parts.length,
    partMiB: round(partBytes / MiB, 1),
    seconds: round(m.ms / 1000, 2),
    mibPerSec: round(totalBytes / MiB / (m.ms / 1000), 1),
    tarSeconds: round(tarMs / 1000, 2),
    tarMibPerSec: round(totalBytes / MiB / (tarMs / 1000), 1),
    tarMiB: round(tarBytes / MiB, 1),
    ratioVsTar: round(m.ms / tarMs, 2),
    idleRssMiB: round(m.before / MiB, 1),
    peakGrowthMiB: round(m.growth / MiB, 1),
    failures: ok ? 0 : 1,
  };
}

export async function runExportArchive(ctx, names = EXPORT_ARCHIVE_SCENARIOS) {
  if (ctx.external) {
    console.log('\n== export-archive: skipped with --target (runs our task in-process)');
    return {};
  }
  const files = ctx.files ?? (ctx.smoke ? 16 : 256);
  const fileBytes = (ctx.fileMib ?? (ctx.smoke ? 1 : 4)) * MiB;
  const out = {};
  for (const name of names) {
    const s = await startInProcess(join(ctx.workDir, name), ctx.postgres);
    try {
      console.log(`\n== ${name}: ${files} × ${fileBytes / MiB} MiB (${s.database}, in-process server)`);
      const summary = await exportScenario(s, files, fileBytes);
      summary.database = s.database;
      out[name] = summary;
      console.log(`wrote ${writeResult(name, { summary }, ctx.suffix)}`);
    } finally {
      await s.stop();
    }
  }
  printTable(
    `export-archive (${Object.values(out)[0]?.database ?? '-'}; same-run baseline: tar czf)`,
    [
      'scenario',
      'MiB',
      'parts',
      'export s',
      'MiB/s',
      'tar czf s',
      'tar MiB/s',
      'export/tar',
      'peak RSS growth MiB',
      'check',
    ],
    Object.entries(out).map(([n, x]) => [
      n,
      x.totalMiB,
      x.parts,
      x.seconds,
      x.mibPerSec,
      x.tarSeconds,
      x.tarMibPerSec,
      x.ratioVsTar,
      x.peakGrowthMiB,
      x.failures ? 'FAILED' : 'ok',
    ]),
  );
  const failed = Object.entries(out).filter(([, x]) => x.failures);
  if (failed.length)
    throw new Error(`export-archive: ${failed.map(([n, x]) => `${n} ${JSON.stringify(x)}`).join('; ')}`);
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opt } = parseArgs({
    allowPositionals: true,
    options: {
      files: { type: 'string' },
      'file-mib': { type: 'string' },
      postgres: { type: 'string', default: '' },
      smoke: { type: 'boolean', default: false },
    },
  });
  ensureBuilt();
  const workDir = join(tmpdir(), `media-repo-bench-export-${randomBytes(4).toString('hex')}`);
  try {
    await runExportArchive({
      workDir,
      postgres: opt.postgres,
      smoke: opt.smoke,
      files: opt.files ? Number(opt.files) : undefined,
      fileMib: opt['file-mib'] ? Number(opt['file-mib']) : undefined,
      suffix: [opt.postgres && 'postgres', opt.smoke && 'smoke'].filter(Boolean).join('-'),
    });
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.exit(0);
}
