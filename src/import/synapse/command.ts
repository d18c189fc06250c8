import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { Db } from '../../db/driver.js';
import { openDatabase } from '../../db/open.js';
import { openPostgres } from '../../db/postgres.js';
import { migrate } from '../../db/migrate.js';
import { bytesPerDatastore } from '../../db/media.js';
import { DatastoreRegistry } from '../../datastores/registry.js';
import { UploadSinkPool } from '../../pools/upload-sink.js';
import { CONFIG_FLAG, type CommandContext, type ParsedFlags, type Subcommand } from '../command.js';
import { MediaStore } from './paths.js';
import { SynapseSource } from './source.js';
import { runSynapseImport, type Counts } from './run-import.js';

// `media-repo import synapse`: offline import of Synapse's local media and remote media cache
// from its database and media_store_path into our database and datastores. Thumbnails are not
// imported (they are made again on request) and neither is the URL preview cache.

const BATCH = 2000;

// Reading SQLite would need a WASM SQLite that can page through a file of many GB without
// holding it in memory; sql.js (the maintained one) loads the whole file, and Node 20 has no
// node:sqlite. Synapse's own port script moves a SQLite database to Postgres in one command.
const SQLITE_HELP =
  'reading a SQLite Synapse database is not supported (no WASM SQLite reads a multi-GB file in bounded memory); ' +
  'port it to Postgres first with Synapse’s synapse_port_db (https://element-hq.github.io/synapse/latest/postgres.html), ' +
  'then pass --synapse-db';

export const synapseImportCommand: Subcommand = {
  name: 'import synapse',
  summary: 'import local media and the remote media cache from a Synapse database and media_store_path',
  positionals: null,
  flags: {
    'synapse-db': { kind: 'string', help: 'Synapse’s PostgreSQL database (postgres://user@host/synapse)' },
    'synapse-sqlite': { kind: 'string', help: 'a SQLite Synapse database: not supported, see the message' },
    'media-store': { kind: 'string', help: 'Synapse’s media_store_path', required: true },
    'server-name': { kind: 'string', help: 'Synapse’s server_name: the origin of its local media', required: true },
    ...CONFIG_FLAG,
    'dry-run': { kind: 'boolean', help: 'count what would be imported, missing files and bad rows; write nothing' },
    concurrency: { kind: 'string', help: 'files imported at once (default 4)' },
    'batch-files': {
      kind: 'string',
      help: 'files made durable and committed together (default 256; fewer: less redone after a crash, slower)',
    },
    'local-only': { kind: 'boolean', help: 'only local_media_repository' },
    'remote-only': { kind: 'boolean', help: 'only remote_media_cache' },
  },
  run,
};

function usageError(msg: string): number {
  console.error(`media-repo import synapse: ${msg}`);
  return 2;
}

function fatal(msg: string): number {
  console.error(`media-repo import synapse: ${msg}`);
  return 1;
}

async function run(flags: ParsedFlags, ctx: CommandContext): Promise<number> {
  const v = flags.values;
  if (v['synapse-sqlite'] !== undefined) return usageError(SQLITE_HELP);
  const dsn = v['synapse-db'] as string | undefined;
  if (!dsn) return usageError('--synapse-db is required');
  if (v['local-only'] && v['remote-only']) return usageError('--local-only and --remote-only exclude each other');
  const concurrency = v.concurrency === undefined ? 4 : Number(v.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    return usageError(`--concurrency: expected an integer from 1 to 256, got ${JSON.stringify(v.concurrency)}`);
  const batchFiles = v['batch-files'] === undefined ? 256 : Number(v['batch-files']);
  if (!Number.isInteger(batchFiles) || batchFiles < 1 || batchFiles > 4096)
    return usageError(`--batch-files: expected an integer from 1 to 4096, got ${JSON.stringify(v['batch-files'])}`);
  const serverName = v['server-name'] as string;
  const domain = [...ctx.config.domains.values()].find((d) => d.homeserver.name === serverName);
  if (!domain) {
    const names = ctx.config.global.homeservers.map((h) => h.name).join(', ');
    return usageError(`--server-name ${serverName} is not a homeserver of the media-repo config (it has: ${names})`);
  }
  const storePath = resolve(v['media-store'] as string);
  const st = await stat(storePath).catch(() => null);
  if (!st?.isDirectory()) return fatal(`--media-store ${storePath} is not a directory`);
  if (!existsSync(resolve(storePath, 'local_content')) && !existsSync(resolve(storePath, 'remote_content')))
    return fatal(`--media-store ${storePath} has neither local_content/ nor remote_content/: is it media_store_path?`);

  const dryRun = v['dry-run'] === true;
  let synapse: Db;
  try {
    synapse = await openPostgres({ dsn, maxConnections: 2, maxIdleConnections: 1 }, ctx.log);
    await synapse.query('SELECT 1');
  } catch (e) {
    return fatal(`cannot connect to the Synapse database: ${(e as Error).message}`);
  }
  const closers: (() => Promise<void>)[] = [() => synapse.close()];
  try {
    let source: SynapseSource;
    try {
      source = await SynapseSource.open(synapse);
    } catch (e) {
      return fatal((e as Error).message);
    }
    const ours = dryRun ? await openForDryRun(ctx) : await openDatabase(ctx.config.global, ctx.log);
    if (ours) closers.unshift(() => ours.close());
    let deps = null;
    if (!dryRun && ours) {
      await migrate(ours, ctx.log);
      const sinks = new UploadSinkPool();
      closers.unshift(() => sinks.close());
      // Its own staging tag: never mistaken for a running server's staging objects.
      const datastores = new DatastoreRegistry(`import${process.pid}`, sinks);
      const byId = new Map(ctx.config.global.datastores.map((d) => [d.id, d]));
      for (const ds of domain.datastores) byId.set(ds.id, ds);
      await datastores.sync([...byId.values()]);
      datastores.setTally(await bytesPerDatastore(ours));
      deps = { db: ours, datastores };
    }
    const { counts, interrupted } = await runSynapseImport(
      source,
      { db: ours, deps },
      {
        serverName,
        store: new MediaStore(storePath),
        dryRun,
        concurrency,
        batchSize: BATCH,
        storeBatchFiles: batchFiles,
        local: v['remote-only'] !== true,
        remote: v['local-only'] !== true,
        datastoreIds: domain.datastores.map((d) => d.id),
        signal: ctx.signal,
      },
      ctx.progress,
      ctx.log,
    );
    ctx.progress.finish({ dryRun, interrupted, ...counts });
    ctx.print(summary(counts, dryRun, interrupted));
    if (interrupted) return 130;
    return counts.failed > 0 ? 1 : 0;
  } catch (e) {
    return fatal((e as Error).message);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
  }
}

/**
 * A dry run writes nothing, so it never creates or migrates our database: it opens one that
 * exists (Postgres, or a PGlite folder already there) only to tell what is imported already.
 */
async function openForDryRun(ctx: CommandContext): Promise<Db | null> {
  const g = ctx.config.global;
  if (!g.database.postgres.trim()) {
    const p = g.database.embeddedPath;
    if (p === 'memory://') return null;
    if (!existsSync(isAbsolute(p) ? p : resolve(p))) return null;
  }
  const db = await openDatabase(g, ctx.log);
  const r = await db.query<{ t: string | null }>("SELECT to_regclass('media')::text AS t");
  if (r.rows[0]?.t) return db;
  await db.close();
  return null;
}

function summary(c: Counts, dryRun: boolean, interrupted: boolean): string {
  const mib = (c.bytes / 1048576).toFixed(1);
  const head = dryRun
    ? `dry run: would import ${c.wouldImport} file(s) (${mib} MiB)`
    : `imported ${c.imported} file(s) (${mib} MiB)`;
  return (
    `${head}; ${c.alreadyThere} already there, ${c.missing} missing on disk, ${c.unsafe} unsafe, ` +
    `${c.urlCache} URL-preview row(s) skipped, ${c.pending} pending upload(s), ${c.sizeMismatch} size mismatch(es), ` +
    `${c.hashMismatch} hash mismatch(es), ${c.failed} failed` +
    (interrupted ? '; interrupted: run the same command again to resume' : '')
  );
}
