// Starts media-repo (the built CLI) as a child process with a generated config, and describes
// any media repo under test as a "target": { name, url, host, token, pid?, legacyDownload }.
import { mkdirSync, writeFileSync, statSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import pg from 'pg';
import { startChild, freePort, waitForHttp } from './proc.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_HOST = 'bench.local';
const CLI = join(ROOT, 'dist', 'src', 'launcher.cjs');

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing, older than src/, or when asked to. */
export function ensureBuilt(force = false) {
  const stale = !existsSync(CLI) || newestMtime(join(ROOT, 'src')) > statSync(CLI).mtimeMs;
  if (!force && !stale) return false;
  console.log('building: npx tsc -p tsconfig.json');
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('tsc failed; fix the build or run with a built dist/');
  return true;
}

/** A fresh database inside the Postgres server of `dsn`; drop() removes it. */
export async function freshPostgresDatabase(dsn) {
  const name = `media_repo_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: dsn });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(dsn);
  u.pathname = `/${name}`;
  return {
    dsn: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: dsn });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Starts our server in `dir`. Options: postgres (a DSN; PGlite when empty), cpuProf (write a
 * .cpuprofile into dir/prof on exit), logLevel, cli (another build's dist/src/cli.js, for A/B runs).
 */
export async function startOurRepo(
  dir,
  { postgres = '', cpuProf = false, logLevel = 'info', cli = CLI, overrides = [] } = {},
) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const db = postgres ? await freshPostgresDatabase(postgres) : null;
  const config = {
    // No load balancer watches a bench server: it stops without the shutdown grace period.
    repo: { bindAddress: '127.0.0.1', port, logLevel, freezeUnauthenticatedMedia: false, shutdownGraceSeconds: 0 },
    database: { postgres: db?.dsn ?? '', embeddedPath: join(dir, 'db') },
    // csApi is never called: the shared secret authenticates every benchmark request.
    homeservers: [{ name: BENCH_HOST, csApi: 'http://127.0.0.1:9/' }],
    sharedSecretAuth: { enabled: true, token },
    accessTokens: { maxCacheTimeSeconds: 0 },
    datastores: [{ id: 'bench', type: 'file', forKinds: ['all'], opts: { path: join(dir, 'media') } }],
    uploads: { maxBytes: 2147483648, minBytes: 1 },
  };
  // --set a.b.c=VALUE (VALUE parsed as YAML) for experiments with other settings.
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq < 1) throw new Error(`--set expects key.path=value, got ${o}`);
    const keys = o.slice(0, eq).split('.');
    let node = config;
    for (const k of keys.slice(0, -1)) node = node[k] ??= {};
    node[keys.at(-1)] = yaml.load(o.slice(eq + 1));
  }
  const configFile = join(dir, 'media-repo.yaml');
  writeFileSync(configFile, yaml.dump(config));
  const nodeArgs = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(dir, 'prof')] : [];
  const child = startChild('media-repo', process.execPath, [...nodeArgs, cli, '-config', configFile], {
    cwd: dir,
    logFile: join(dir, 'server.log'),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`, { child, timeoutMs: 120_000 });
  } catch (e) {
    await child.stop();
    await db?.drop().catch(() => {});
    throw e;
  }
  return {
    name: 'media-repo',
    url,
    host: BENCH_HOST,
    token,
    pid: child.pid,
    legacyDownload: true,
    database: db ? 'postgres' : 'pglite',
    dir,
    profDir: cpuProf ? join(dir, 'prof') : null,
    async stop() {
      const code = await child.stop(15_000);
      await db?.drop().catch((e) => console.error(`could not drop the bench database: ${e.message}`));
      return code;
    },
  };
}

/** An already-running media repo (ours, MMR, Synapse) reached only through spec endpoints. */
export function externalTarget({ url, token, host, pid }) {
  const u = new URL(url);
  return {
    name: 'target',
    url: u.origin,
    host: host || u.host,
    token,
    pid: pid ? Number(pid) : null,
    legacyDownload: false,
    database: 'unknown',
    async stop() {},
  };
}
