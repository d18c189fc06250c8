import { createHash } from 'node:crypto';
import { seedPglite } from './pglite-template.js';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import yaml from 'js-yaml';
import { openPglite } from '../../src/db/pglite.js';
import type { Db } from '../../src/db/driver.js';
import { createLogger } from '../../src/logging/logger.js';
import { openPostgres } from '../../src/db/postgres.js';
import { createTestDatabase, type DriverName } from './databases.js';
import { startFixtureHomeserver, type FixtureHomeserver } from './homeserver.js';
import { ALICE, SERVER_NAME, freePort, spawnRepo, testConfig } from './repo.js';
import { RawConn } from './hostile-http.js';

// A media-repo run as a child process (the built CLI) that tests may SIGKILL and restart
// on the same config, port, database and media folder.

export interface CrashRepo {
  dir: string;
  mediaDir: string;
  port: number;
  url: string;
  child: ChildProcess | null;
  output(): string;
  start(): Promise<void>;
  /** SIGKILL, then wait for the process to be gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful stop), then wait for the process to be gone. */
  stop(): Promise<void>;
  /**
   * Opens the database directly. PGlite is single-process, so it opens a copy of the data
   * directory, taken while the child is down: the copy recovers exactly as the child will.
   */
  withDb<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

export async function crashRepo(driver: DriverName): Promise<CrashRepo> {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-crash-'));
  const hs: FixtureHomeserver = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  const pgdb = driver === 'postgres' ? await createTestDatabase() : null;
  if (!pgdb) await seedPglite(join(dir, 'db'));
  const port = await freePort();
  const configFile = join(dir, 'media-repo.yaml');
  writeFileSync(
    configFile,
    yaml.dump(testConfig(dir, hs.url, pgdb?.dsn ?? '', { repo: { bindAddress: '127.0.0.1', port, logLevel: 'info' } })),
  );
  const outputs: (() => string)[] = [];
  const cr: CrashRepo = {
    dir,
    mediaDir: join(dir, 'media'),
    port,
    url: `http://127.0.0.1:${port}`,
    child: null,
    output: () => outputs.map((o, i) => `--- run ${i + 1} ---\n${o()}`).join('\n'),
    async start() {
      const s = await spawnRepo(configFile);
      outputs.push(s.output);
      cr.child = s.child;
    },
    async kill9() {
      const c = cr.child;
      if (!c) return;
      c.kill('SIGKILL');
      await exited(c);
      cr.child = null;
    },
    async stop() {
      const c = cr.child;
      if (!c) return;
      c.kill('SIGTERM');
      await exited(c);
      cr.child = null;
    },
    async withDb(fn) {
      const log = createLogger({ level: 'error', json: false, sink: () => undefined });
      let db: Db;
      if (pgdb) {
        db = await openPostgres({ dsn: pgdb.dsn, maxConnections: 2, maxIdleConnections: 0 }, log);
      } else {
        if (cr.child) throw new Error('stop or kill the child before copying its PGlite directory');
        const copy = join(dir, 'db-inspect');
        rmSync(copy, { recursive: true, force: true });
        cpSync(join(dir, 'db'), copy, { recursive: true });
        db = await openPglite(copy);
      }
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
    async close() {
      await cr.kill9();
      await hs.close();
      await pgdb?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cr;
}

export interface Uploaded {
  mxc: string;
  sha256: string;
  body: Buffer;
}

/** POST /upload with the test token; resolves with the mxc on 200, null on any failure. */
export async function tryUpload(cr: CrashRepo, body: Buffer): Promise<Uploaded | null> {
  try {
    const res = await fetch(`${cr.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: {
        'X-Forwarded-Host': SERVER_NAME,
        Authorization: `Bearer ${ALICE}`,
        'Content-Type': 'application/octet-stream',
      },
    });
    if (res.status !== 200) return null;
    const { content_uri } = (await res.json()) as { content_uri: string };
    return { mxc: content_uri, sha256: createHash('sha256').update(body).digest('hex'), body };
  } catch {
    return null; // the server died under us
  }
}

/**
 * The same over a raw socket, so the caller knows when the last body byte has left:
 * `sent` resolves then, `result` with the mxc on 200 or null on any failure.
 */
export function rawUpload(cr: CrashRepo, body: Buffer): { sent: Promise<void>; result: Promise<Uploaded | null> } {
  let markSent!: () => void;
  const sent = new Promise<void>((r) => (markSent = r));
  const result = (async () => {
    let c: RawConn | null = null;
    try {
      c = await RawConn.open(cr.port);
      await c.head('POST', '/_matrix/media/v3/upload', {
        Host: SERVER_NAME,
        Authorization: `Bearer ${ALICE}`,
        'Content-Type': 'application/octet-stream',
        'Content-Length': body.length,
      });
      await c.write(body);
      markSent();
      const res = await c.response(0, 30_000);
      if (res?.status !== 200) return null;
      const { content_uri } = JSON.parse(res.body.toString()) as { content_uri: string };
      return { mxc: content_uri, sha256: createHash('sha256').update(body).digest('hex'), body };
    } catch {
      return null;
    } finally {
      markSent();
      c?.destroy();
    }
  })();
  return { sent, result };
}

export async function download(cr: CrashRepo, mxc: string): Promise<{ status: number; body: Buffer }> {
  const [server, id] = mxc.slice('mxc://'.length).split('/');
  const res = await fetch(`${cr.url}/_matrix/client/v1/media/download/${server}/${id}`, {
    headers: { 'X-Forwarded-Host': SERVER_NAME, Authorization: `Bearer ${ALICE}` },
  });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

export interface BlobProblem {
  mediaId: string;
  problem: string;
}

/** Every media row must point at a blob file whose size and SHA-256 match the row. */
export async function checkRowsAgainstBlobs(cr: CrashRepo): Promise<{ rows: number; problems: BlobProblem[] }> {
  return cr.withDb(async (db) => {
    const r = await db.query<{
      media_id: string;
      sha256_hash: string;
      size_bytes: unknown;
      location: string;
      datastore_id: string;
    }>('SELECT media_id, sha256_hash, size_bytes, location, datastore_id FROM media');
    const problems: BlobProblem[] = [];
    for (const row of r.rows) {
      if (row.datastore_id !== 'files') {
        problems.push({ mediaId: row.media_id, problem: `unexpected datastore ${row.datastore_id}` });
        continue;
      }
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(cr.mediaDir, row.location));
      } catch (e) {
        problems.push({ mediaId: row.media_id, problem: `blob missing: ${(e as Error).message}` });
        continue;
      }
      if (bytes.length !== Number(row.size_bytes))
        problems.push({ mediaId: row.media_id, problem: `size ${bytes.length} != row ${row.size_bytes}` });
      const h = createHash('sha256').update(bytes).digest('hex');
      if (h !== row.sha256_hash)
        problems.push({ mediaId: row.media_id, problem: `sha256 ${h} != row ${row.sha256_hash}` });
    }
    return { rows: r.rows.length, problems };
  });
}
