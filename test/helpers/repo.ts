import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import yaml from 'js-yaml';
import { loadConfig } from '../../src/config/load.js';
import { startMediaRepo, type RunningRepo } from '../../src/main.js';
import { createLogger } from '../../src/logging/logger.js';
import { createTestDatabase, type DriverName } from './databases.js';
import { startFixtureHomeserver, type FixtureHomeserver } from './homeserver.js';
import { seedPglite } from './pglite-template.js';
import { keepAliveFetch, PoolAgent } from './keep-alive-fetch.js';
import { requestInProcess } from './in-process.js';

export const SERVER_NAME = 'media.test';
export const ALICE = 'alice-token';
export const BOB = 'bob-token';
export const GUEST = 'guest-token';
export const SECRET = 'test-shared-secret';

export interface TestRepo {
  url: string;
  port: number;
  dir: string;
  mediaDir: string;
  hs: FixtureHomeserver;
  repo: RunningRepo;
  logs: string[];
  /** fetch against the repo for our server name (X-Forwarded-Host) with an optional token. */
  fetch(path: string, init?: TestRequestInit): Promise<Response>;
  /**
   * As fetch, but in-process (RunningRepo.request): the server's real request path without a
   * socket. For tests that look at status, headers and bodies only; redirects are not followed.
   */
  request(path: string, init?: TestRequestInit): Promise<Response>;
  close(): Promise<void>;
}

/**
 * `repo: ONE_THREAD` (merged into a test's repo section): for tests that assert on one
 * thread's internals (its cache, its counters, its waiters) through `repo.services`, which with
 * several HTTP threads describe the main thread's share only. What holds across threads is
 * test/http-threads.test.ts's business; every other test runs with the default thread count.
 */
export const ONE_THREAD = { httpThreads: 1 } as const;

export type TestRequestInit = RequestInit & { token?: string | null; host?: string };

type Overrides = Record<string, unknown>;

/** The one homeserver a test repo serves: its name (default SERVER_NAME) and signing key file. */
export interface HomeserverOptions {
  name?: string;
  signingKeyPath?: string;
}

/** The YAML document a test repo runs with: one homeserver, one file datastore. */
export function testConfig(
  dir: string,
  hsUrl: string,
  dsn: string,
  overrides: Overrides = {},
  homeserver: HomeserverOptions = {},
): Record<string, unknown> {
  const base: Record<string, unknown> = {
    // No shutdown grace period: test servers stop at once (test/shutdown.test.ts sets one).
    repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'debug', shutdownGraceSeconds: 0 },
    database: { postgres: dsn, embeddedPath: join(dir, 'db') },
    homeservers: [
      {
        name: homeserver.name ?? SERVER_NAME,
        csApi: hsUrl,
        ...(homeserver.signingKeyPath ? { signingKeyPath: homeserver.signingKeyPath } : {}),
      },
    ],
    admins: ['@admin:media.test'],
    sharedSecretAuth: { enabled: true, token: SECRET },
    accessTokens: { maxCacheTimeSeconds: 0 },
    datastores: [{ id: 'files', type: 'file', forKinds: ['all'], opts: { path: join(dir, 'media') } }],
    uploads: { minBytes: 1 },
  };
  for (const [k, v] of Object.entries(overrides)) {
    base[k] =
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      base[k] &&
      typeof base[k] === 'object' &&
      !Array.isArray(base[k])
        ? { ...(base[k] as object), ...(v as object) }
        : v;
  }
  return base;
}

function addUsers(hs: FixtureHomeserver): void {
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  hs.tokens.set(BOB, { userId: '@bob:media.test' });
  hs.tokens.set(GUEST, { userId: '@guest:media.test', isGuest: true });
}

/** Several instances over one store: a Postgres database (DSN) the caller created and drops. */
export interface SharedOptions {
  postgresDsn?: string;
}

/** Starts media-repo in this process on an ephemeral port against the chosen driver. */
export async function startTestRepo(
  driver: DriverName,
  overrides: Overrides = {},
  homeserver: HomeserverOptions = {},
  shared: SharedOptions = {},
): Promise<TestRepo> {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-test-'));
  const hs = await startFixtureHomeserver();
  addUsers(hs);
  const db = shared.postgresDsn
    ? { dsn: shared.postgresDsn, drop: async () => undefined }
    : driver === 'postgres'
      ? await createTestDatabase()
      : null;
  if (!db) await seedPglite(join(dir, 'db'));
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(file, yaml.dump(testConfig(dir, hs.url, db?.dsn ?? '', overrides, homeserver)));
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', json: false, sink: (l) => logs.push(l) });
  const repo = await startMediaRepo({ config: await loadConfig(file), configPath: file, log, port: 0 });
  const url = `http://127.0.0.1:${repo.port}`;
  // Connections are kept alive and reused, as a reverse proxy's upstream pool does (see keep-alive-fetch.ts).
  const agent = new PoolAgent();
  const send = keepAliveFetch(agent);
  const headersFor = (init: TestRequestInit) => {
    const headers = new Headers(init.headers);
    // fetch() may not set Host, so tests name the homeserver the way a reverse proxy does.
    headers.set('X-Forwarded-Host', init.host ?? homeserver.name ?? SERVER_NAME);
    const token = init.token === undefined ? null : init.token;
    if (token) headers.set('Authorization', `Bearer ${token}`);
    return headers;
  };
  return {
    url,
    port: repo.port,
    dir,
    mediaDir: join(dir, 'media'),
    hs,
    repo,
    logs,
    fetch(path, init = {}) {
      return send(url + path, { ...init, headers: headersFor(init) });
    },
    request(path, init = {}) {
      return requestInProcess(repo, path, { ...init, headers: headersFor(init) });
    },
    async close() {
      agent.destroy();
      await repo.stop(2000);
      await hs.close();
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs the built CLI as a child process (for kill -9 tests); resolves once it listens. */
export async function spawnRepo(
  configFile: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; output: () => string }> {
  const cli = new URL('../../src/launcher.cjs', import.meta.url).pathname;
  const child = spawn(process.execPath, [cli, '-config', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`repo did not start:\n${out}`)), 60_000);
    const check = () => {
      if (out.includes('media-repo listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`repo exited with ${code}:\n${out}`));
    });
  });
  return { child, output: () => out };
}
