#!/usr/bin/env node
// mmr-adopt: `media-repo import mmr` of an MMR database of N media rows (default 100,000) and
// N/5 thumbnail rows, with a few hundred attribute, reserved and pending rows. Adoption copies
// rows only (objects stay where MMR wrote them), so the objects are not written here. Reported:
// seconds and rows/s of a first run, seconds of a second run (a re-scan that inserts nothing),
// and the import process's peak RSS and its growth over its RSS when the row copy starts.
// With --postgres the target is a fresh Postgres database and the same run measures a baseline
// of moving the same rows with nothing but Postgres: psql's COPY out of MMR piped into COPY in
// (what any import must at least do); the ratio is baseline seconds / adoption seconds. On
// PGlite there is no such baseline.
//
// MMR's database needs a Postgres server: --postgres DSN, else MEDIA_REPO_TEST_POSTGRES.
// Standalone: node bench/mmr-adopt.mjs [--rows N] [--postgres DSN] [--batch-size N] [--smoke]; or through
// bench/run.mjs: npm run bench -- mmr-adopt
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import yaml from 'js-yaml';
import { ROOT, ensureBuilt, freshPostgresDatabase } from './lib/repo.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { printTable, round, writeResult } from './lib/report.mjs';

export const MMR_ADOPT_SCENARIOS = ['mmr-adopt-100k'];
const MiB = 1024 * 1024;
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

async function sql(dsn, text, params = []) {
  const c = new pg.Client({ connectionString: dsn });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

/** MMR's tables, filled set-based on the server: N media rows, N/5 thumbnails, small side tables. */
async function seedMmr(dsn, rows) {
  const { MMR_SCHEMA } = await import(pathToFileURL(join(ROOT, 'dist', 'test', 'helpers', 'mmr-fixture.js')).href);
  await sql(dsn, MMR_SCHEMA);
  await sql(
    dsn,
    `INSERT INTO media SELECT 'bench.local', md5(i::text) || 'idv2', 'file' || i || '.bin', 'application/octet-stream',
       '@user' || (i % 500) || ':bench.local', encode(sha256(i::text::bytea), 'hex'), 1000 + i % 9000,
       substr(md5('o' || i), 1, 2) || '/' || substr(md5('o' || i), 3, 2) || '/' || substr(md5('o' || i), 5), 1700000000000 + i,
       i % 997 = 0, 'mmr-files' FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
  await sql(
    dsn,
    `INSERT INTO thumbnails SELECT 'bench.local', md5(i::text) || 'idv2', 96, 96, 'crop', 'image/png', 500, 't/' || md5('t' || i),
       1700000000000 + i, FALSE, encode(sha256(('t' || i)::bytea), 'hex'), 'mmr-files' FROM generate_series(1, $1::int) AS i`,
    [Math.floor(rows / 5)],
  );
  await sql(
    dsn,
    `INSERT INTO media_attributes SELECT 'bench.local', md5(i::text) || 'idv2', 'pinned' FROM generate_series(1, 300) AS i`,
  );
  await sql(
    dsn,
    `INSERT INTO reserved_media SELECT 'bench.local', 'purged' || i, 'purged' FROM generate_series(1, 300) AS i`,
  );
  await sql(
    dsn,
    `INSERT INTO expiring_media SELECT 'bench.local', 'pending' || i, '@user1:bench.local', $1::bigint FROM generate_series(1, 300) AS i`,
    [Date.now() + 3_600_000],
  );
  await sql(dsn, 'ANALYZE');
}

/** One adoption run of the CLI: seconds, peak RSS and RSS growth from the start of the row copy. */
async function adoptOnce(cfg, from, batchSize) {
  const t0 = performance.now();
  const extra = batchSize ? ['--batch-size', String(batchSize)] : [];
  const child = spawn(process.execPath, [CLI, 'import', 'mmr', '-config', cfg, '--from', from, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sampler = startRssSampler([child.pid], 20);
  let out = '';
  let err = '';
  let copyStartRss = null;
  child.stdout.on('data', (d) => {
    out += d.toString();
    if (copyStartRss === null && /"phase":"media"/.test(out)) copyStartRss = rssNow(child.pid);
  });
  child.stderr.on('data', (d) => (err += d.toString()));
  const code = await new Promise((r) => child.once('close', r));
  const seconds = (performance.now() - t0) / 1000;
  const rss = await sampler.stop();
  if (code !== 0) throw new Error(`import mmr exited ${code}: ${err.slice(-2000)}`);
  const done = JSON.parse(out.trim().split('\n').pop());
  return {
    seconds,
    peakRssMiB: rss.peakBytes / MiB,
    growthMiB: (rss.peakBytes - (copyStartRss ?? rss.peakBytes)) / MiB,
    done,
  };
}

function rssNow(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'latin1' }).stdout);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The same rows moved by Postgres alone: COPY out of MMR piped into COPY in. */
function copyBaseline(from, to) {
  const t0 = performance.now();
  for (const table of ['media', 'thumbnails']) {
    const r = spawnSync(
      'bash',
      ['-c', `psql "${from}" -qc "\\copy ${table} TO STDOUT" | psql "${to}" -qc "\\copy base_${table} FROM STDIN"`],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`COPY baseline failed: ${r.stderr}`);
  }
  return (performance.now() - t0) / 1000;
}

export async function runMmrAdopt(ctx) {
  if (ctx.external) return {};
  const dsn = ctx.postgres || process.env.MEDIA_REPO_TEST_POSTGRES;
  if (!dsn) {
    console.log('mmr-adopt: skipped (needs a Postgres server for MMR: --postgres DSN or MEDIA_REPO_TEST_POSTGRES)');
    return {};
  }
  const rows = ctx.rows ?? (ctx.smoke ? 2000 : 100_000);
  const dir = join(ctx.workDir ?? tmpdir(), `mmr-adopt-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const mmr = await freshPostgresDatabase(dsn);
  const target = ctx.postgres ? await freshPostgresDatabase(dsn) : null;
  try {
    console.log(`\n== mmr-adopt: seeding ${rows} media rows and ${Math.floor(rows / 5)} thumbnails`);
    await seedMmr(mmr.dsn, rows);
    const cfg = join(dir, 'adopt.yaml');
    writeFileSync(
      cfg,
      yaml.dump({
        repo: { logLevel: 'warn' },
        database: target ? { postgres: target.dsn } : { embeddedPath: join(dir, 'db') },
        homeservers: [{ name: 'bench.local', csApi: 'http://127.0.0.1:9' }],
        datastores: [{ id: 'mmr-files', type: 'file', forKinds: ['all'], opts: { path: join(dir, 'mmr-media') } }],
      }),
    );
    const first = await adoptOnce(cfg, mmr.dsn, ctx.batchSize);
    const total = Object.values(first.done.phases).reduce((n, p) => n + p.inserted, 0);
    const second = await adoptOnce(cfg, mmr.dsn, ctx.batchSize);
    let baseline = null;
    if (target) {
      // MMR's column order, so COPY's text rows go straight in; with the same keys as ours.
      await sql(
        target.dsn,
        `CREATE TABLE base_media (origin TEXT, media_id TEXT, upload_name TEXT, content_type TEXT, user_id TEXT,
           sha256_hash TEXT, size_bytes BIGINT, location TEXT, creation_ts BIGINT, quarantined BOOL, datastore_id TEXT,
           PRIMARY KEY (origin, media_id))`,
      );
      await sql(
        target.dsn,
        `CREATE TABLE base_thumbnails (origin TEXT, media_id TEXT, width INT, height INT, method TEXT, content_type TEXT,
           size_bytes BIGINT, location TEXT, creation_ts BIGINT, animated BOOL, sha256_hash TEXT, datastore_id TEXT,
           PRIMARY KEY (origin, media_id, width, height, method, animated))`,
      );
      baseline = copyBaseline(mmr.dsn, target.dsn);
    }
    const result = {
      rows,
      thumbnails: Math.floor(rows / 5),
      database: target ? 'postgres' : 'pglite',
      inserted: total,
      first: {
        seconds: round(first.seconds, 2),
        rowsPerSec: round(total / first.seconds, 0),
        peakRssMiB: round(first.peakRssMiB, 1),
        growthMiB: round(first.growthMiB, 1),
      },
      second: {
        seconds: round(second.seconds, 2),
        inserted: Object.values(second.done.phases).reduce((n, p) => n + p.inserted, 0),
      },
      baseline: baseline === null ? null : { seconds: round(baseline, 2), ratio: round(baseline / first.seconds, 2) },
    };
    printTable(
      `mmr-adopt (${result.database}; objects are not copied)`,
      ['run', 'seconds', 'rows/s', 'peak RSS MiB', 'RSS growth MiB', 'inserted'],
      [
        [
          'first',
          result.first.seconds,
          result.first.rowsPerSec,
          result.first.peakRssMiB,
          result.first.growthMiB,
          total,
        ],
        ['second', result.second.seconds, '', '', '', result.second.inserted],
        ...(result.baseline
          ? [
              [
                'COPY baseline',
                result.baseline.seconds,
                round(total / baseline, 0),
                '',
                '',
                `ratio ${result.baseline.ratio}`,
              ],
            ]
          : []),
      ],
    );
    writeResult('mmr-adopt-100k', result, target ? 'postgres' : '');
    return { 'mmr-adopt-100k': result };
  } finally {
    await mmr.drop();
    if (target) await target.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      postgres: { type: 'string' },
      smoke: { type: 'boolean' },
      'batch-size': { type: 'string' },
    },
  });
  ensureBuilt();
  await runMmrAdopt({
    rows: values.rows ? Number(values.rows) : undefined,
    postgres: values.postgres,
    smoke: values.smoke,
    batchSize: values['batch-size'] ? Number(values['batch-size']) : undefined,
  });
}
