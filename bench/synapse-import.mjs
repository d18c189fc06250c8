#!/usr/bin/env node
// synapse-import: `media-repo import synapse` of N files (default 10,000) of mixed sizes from a
// synthetic Synapse (its two media tables in a fresh Postgres database, files in Synapse's
// local_content/aa/bb/rest layout), against the same-run baseline of what any import must do at
// least: `cp -r` of the media store plus `sha256sum` of every copied file. The tree is read
// once before both (a warm page cache for each side). Reported: seconds, files/s and MiB/s for
// both, the ratio baseline/import (goal >= 0.8), and the import process's peak RSS growth over
// its RSS when the import phase starts (goal < 64 MiB). Baseline and import alternate --reps
// times (3 by default) and the medians are compared.
//
// The Synapse database needs a Postgres server (a database is created there and dropped):
// --synapse-postgres DSN, else --postgres DSN, else MEDIA_REPO_TEST_POSTGRES; without any the
// scenario is skipped. Our side runs on PGlite unless --postgres is given (as in bench/run.mjs).
//
// Standalone: node bench/synapse-import.mjs [--files N] [--reps R] [--concurrency C] [--batch-files B]
//   [--postgres DSN] [--synapse-postgres DSN] [--smoke]; or through bench/run.mjs: npm run bench -- synapse-import
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import yaml from 'js-yaml';
import { ROOT, ensureBuilt, freshPostgresDatabase } from './lib/repo.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { printTable, round, ratio, writeResult } from './lib/report.mjs';

export const SYNAPSE_IMPORT_SCENARIOS = ['synapse-import-10k'];

const MiB = 1024 * 1024;
const HOST = 'bench.local';
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** Mixed sizes, fixed by index: 60% 4–32 KiB, 35% 32–256 KiB, 5% 256 KiB–2 MiB. */
function sizeOf(i) {
  const r = (i * 2654435761) % 1000;
  const span = (lo, hi) => lo + ((i * 40503) % (hi - lo));
  if (r < 600) return span(4 << 10, 32 << 10);
  if (r < 950) return span(32 << 10, 256 << 10);
  return span(256 << 10, 2 << 20);
}

/** Writes the media store and the rows; returns total bytes. */
async function seed(dsn, store, files) {
  const c = new pg.Client({ connectionString: dsn });
  await c.connect();
  await c.query(`CREATE TABLE local_media_repository (
      media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT, upload_name TEXT,
      user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT,
      safe_from_quarantine BOOLEAN NOT NULL DEFAULT FALSE, authenticated BOOLEAN NOT NULL DEFAULT FALSE,
      sha256 TEXT, UNIQUE (media_id));
    CREATE TABLE remote_media_cache (
      media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT,
      media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT,
      authenticated BOOLEAN NOT NULL DEFAULT FALSE, sha256 TEXT, UNIQUE (media_origin, media_id));`);
  const pool = randomBytes(2 << 20); // file bodies are slices of one random buffer, offset per file
  let total = 0;
  const CHUNK = 2000;
  for (let i = 0; i < files; i += CHUNK) {
    const ids = [];
    const lens = [];
    for (let k = i; k < Math.min(files, i + CHUNK); k++) {
      const id = `bench${String(k).padStart(8, '0')}${randomBytes(6).toString('hex')}`;
      const size = sizeOf(k);
      const dir = join(store, 'local_content', id.slice(0, 2), id.slice(2, 4));
      mkdirSync(dir, { recursive: true });
      const body = Buffer.concat([Buffer.from(id), pool.subarray(k % 4096, (k % 4096) + size - id.length)]);
      writeFileSync(join(dir, id.slice(4)), body);
      ids.push(id);
      lens.push(body.length);
      total += body.length;
    }
    await c.query(
      `INSERT INTO local_media_repository (media_id, media_type, media_length, created_ts, upload_name, user_id)
       SELECT id, 'application/octet-stream', len, 1600000000000, 'f.bin', '@bench:${HOST}'
       FROM unnest($1::text[], $2::int[]) AS r(id, len)`,
      [ids, lens],
    );
  }
  await c.end();
  return total;
}

function timed(cmd) {
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}`);
  return (performance.now() - t0) / 1000;
}

/** Runs the import CLI (BENCH_NODE_ARGS: extra node flags, e.g. --cpu-prof); resolves { seconds, peakGrowthMiB, summary }. */
function runImport(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [
        ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []),
        CLI,
        'import',
        'synapse',
        ...args,
      ],
      {
        env: { ...process.env, REPO_CONFIG: '' },
      },
    );
    let out = '';
    let sampler = null;
    let startRss = 0;
    const readRss = () => {
      try {
        return Number(/VmRSS:\s+(\d+) kB/.exec(spawnSync('cat', [`/proc/${child.pid}/status`]).stdout)[1]) * 1024;
      } catch {
        return 0;
      }
    };
    child.stdout.on('data', (d) => {
      out += d;
      // The import phase begins when the first phase line is printed (start-up, migrations
      // and the datastore set-up are behind it).
      if (!sampler && out.includes('"phase":"local media"')) {
        startRss = readRss();
        sampler = startRssSampler([child.pid]);
      }
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', async (code) => {
      const seconds = (performance.now() - t0) / 1000;
      const rss = sampler ? await sampler.stop() : { peakBytes: 0 };
      if (code !== 0) return reject(new Error(`import exited ${code}:\n${out.slice(-3000)}`));
      const summary = out.split('\n').find((l) => l.startsWith('imported ')) ?? '';
      resolve({ seconds, peakGrowthMiB: round((rss.peakBytes - startRss) / MiB, 1), summary });
    });
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function runSynapseImport(ctx) {
  const serverDsn = ctx.synapsePostgres || ctx.postgres || process.env.MEDIA_REPO_TEST_POSTGRES || '';
  if (!serverDsn) {
    console.log('synapse-import: skipped (needs Postgres for the Synapse database: --postgres DSN)');
    return {};
  }
  const files = ctx.files ?? (ctx.smoke ? 300 : 10_000);
  const concurrency = ctx.concurrency || 4;
  const dir = join(ctx.workDir, 'synapse-import');
  const store = join(dir, 'media_store');
  mkdirSync(store, { recursive: true });
  const reps = Math.max(1, ctx.reps ?? (ctx.smoke ? 1 : 3));
  const synapse = await freshPostgresDatabase(serverDsn);
  const ours = [];
  try {
    console.log(`  seeding ${files} files …`);
    const bytes = await seed(synapse.dsn, store, files);
    // Warm the page cache, and flush what seeding left dirty so that neither side pays for it.
    timed(`find '${store}' -type f -print0 | xargs -0 cat > /dev/null && sync`);
    const source = ['--synapse-db', synapse.dsn, '--media-store', store, '--server-name', HOST];
    // Baseline and import alternate, `reps` times (a fresh database and datastore for each
    // import; the disk's write-back makes single runs vary by a third); medians are reported.
    const baselines = [];
    const imports = [];
    let config = '';
    for (let r = 0; r < reps; r++) {
      const copy = join(dir, 'copy');
      baselines.push(
        timed(`cp -r '${store}' '${copy}' && find '${copy}' -type f -print0 | xargs -0 sha256sum > /dev/null && sync`),
      );
      rmSync(copy, { recursive: true, force: true });
      if (r > 0) rmSync(join(dir, `media-${r - 1}`), { recursive: true, force: true });
      timed('sync');
      const db = ctx.postgres ? await freshPostgresDatabase(ctx.postgres) : null;
      if (db) ours.push(db);
      config = join(dir, `media-repo-${r}.yaml`);
      writeFileSync(
        config,
        yaml.dump({
          repo: { logLevel: 'warn' },
          database: { postgres: db?.dsn ?? '', embeddedPath: join(dir, `db-${r}`) },
          homeservers: [{ name: HOST, csApi: 'http://127.0.0.1:9/' }],
          datastores: [{ id: 'bench', type: 'file', forKinds: ['all'], opts: { path: join(dir, `media-${r}`) } }],
        }),
      );
      const imp = await runImport([
        ...source,
        '--config',
        config,
        '--concurrency',
        String(concurrency),
        ...(ctx.batchFiles ? ['--batch-files', String(ctx.batchFiles)] : []),
      ]);
      if (!imp.summary.startsWith(`imported ${files} file(s)`)) throw new Error(`unexpected summary: ${imp.summary}`);
      imports.push(imp);
      console.log(`  rep ${r + 1}: baseline ${round(baselines[r], 2)} s, import ${round(imp.seconds, 2)} s`);
    }
    const again = await runImport([...source, '--config', config]);
    if (!again.summary.startsWith('imported 0 file(s)')) throw new Error(`the re-run imported again: ${again.summary}`);
    const baseline = median(baselines);
    const imp = {
      seconds: median(imports.map((i) => i.seconds)),
      peakGrowthMiB: Math.max(...imports.map((i) => i.peakGrowthMiB)),
    };
    const mib = bytes / MiB;
    const record = {
      files,
      mib: round(mib, 1),
      concurrency,
      batchFiles: ctx.batchFiles || 256,
      database: ctx.postgres ? 'postgres' : 'pglite',
      reps,
      baselineRuns: baselines.map((b) => round(b, 2)),
      importRuns: imports.map((i) => round(i.seconds, 2)),
      baselineSeconds: round(baseline, 2),
      importSeconds: round(imp.seconds, 2),
      ratio: ratio(baseline, imp.seconds),
      importFilesPerSec: round(files / imp.seconds, 0),
      importMiBPerSec: round(mib / imp.seconds, 1),
      baselineMiBPerSec: round(mib / baseline, 1),
      peakRssGrowthMiB: imp.peakGrowthMiB,
      rerunSeconds: round(again.seconds, 2),
    };
    printTable(
      `synapse-import (${record.database}; ${files} files, ${record.mib} MiB; baseline: cp -r + sha256sum; goal ratio >= 0.8, RSS growth < 64 MiB)`,
      ['scenario', 'baseline s', 'import s', 'ratio', 'files/s', 'MiB/s', 'RSS growth MiB', 're-run s'],
      [
        [
          'synapse-import-10k',
          record.baselineSeconds,
          record.importSeconds,
          record.ratio,
          record.importFilesPerSec,
          record.importMiBPerSec,
          record.peakRssGrowthMiB,
          record.rerunSeconds,
        ],
      ],
    );
    writeResult('synapse-import-10k', record, ctx.suffix ?? '');
    return { 'synapse-import-10k': record };
  } finally {
    await synapse.drop().catch(() => undefined);
    for (const db of ours) await db.drop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opt } = parseArgs({
    options: {
      files: { type: 'string' },
      concurrency: { type: 'string' },
      reps: { type: 'string' },
      'batch-files': { type: 'string' },
      postgres: { type: 'string', default: '' },
      'synapse-postgres': { type: 'string', default: '' },
      smoke: { type: 'boolean', default: false },
    },
  });
  try {
    ensureBuilt();
  } catch (e) {
    if (!existsSync(CLI)) throw e;
    console.error(`warning: ${e.message}; using the dist/ there is`);
  }
  const workDir = join(tmpdir(), `media-repo-bench-synapse-${randomBytes(4).toString('hex')}`);
  try {
    await runSynapseImport({
      workDir,
      postgres: opt.postgres,
      synapsePostgres: opt['synapse-postgres'],
      smoke: opt.smoke,
      files: opt.files ? Number(opt.files) : undefined,
      concurrency: Number(opt.concurrency) || 0,
      reps: opt.reps ? Number(opt.reps) : undefined,
      batchFiles: Number(opt['batch-files']) || 0,
      suffix: [opt.postgres && 'postgres', opt.smoke && 'smoke'].filter(Boolean).join('-'),
    });
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.exit(0);
}
