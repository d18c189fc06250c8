import { openDatabase } from '../../db/open.js';
import { openPostgres } from '../../db/postgres.js';
import { migrate } from '../../db/migrate.js';
import type { Db } from '../../db/driver.js';
import { CONFIG_FLAG, type CommandContext, type ParsedFlags, type Subcommand } from '../command.js';
import { openConfiguredStores } from '../open-stores.js';
import { AdoptError, adoptMmr, preflight, sourceCounts, type AdoptOptions } from './adopt.js';

// `media-repo import mmr`: adopt an MMR deployment in place (see adopt.ts). The media-repo
// config (-config) names the target database and the datastores, with MMR's datastore IDs and
// opts; MMR's config file works as one once database.postgres or database.schema is set apart.

export const mmrImportCommand: Subcommand = {
  name: 'import mmr',
  summary:
    'Adopt an MMR deployment in place: copy its rows (media, thumbnails, quarantine, freeze flags,\n' +
    "pinned attributes, reserved IDs, pending async uploads) into this config's database and read\n" +
    "MMR's objects where they are. MMR's database is only read, so you can go back.",
  positionals: null,
  flags: {
    ...CONFIG_FLAG,
    from: {
      kind: 'string',
      help: "MMR's Postgres DSN (default: database.postgres, when database.schema keeps ours apart)",
    },
    'dry-run': { kind: 'boolean', help: 'check and count, print what would happen, write nothing' },
    verify: { kind: 'boolean', help: 're-hash every object beside the import and report mismatches' },
    'batch-size': { kind: 'string', help: 'rows per batch and transaction (default 1000)' },
    'pause-ms': { kind: 'string', help: 'pause between batches, to spare a live MMR database (default 0)' },
  },
  run,
};

function positiveInt(v: string | boolean | undefined, name: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new AdoptError([`--${name} must be an integer >= ${min}`]);
  return n;
}

async function run(flags: ParsedFlags, ctx: CommandContext): Promise<number> {
  const db = ctx.config.global.database;
  try {
    const opts: AdoptOptions = {
      batchSize: positiveInt(flags.values['batch-size'], 'batch-size', 1000, 1),
      pauseMs: positiveInt(flags.values['pause-ms'], 'pause-ms', 0, 0),
      verify: flags.values.verify === true,
      reservationLifetimeMs: ctx.config.global.uploads.maxAgeSeconds * 1000,
    };
    const from = (flags.values.from as string | undefined) ?? (db.schema && db.postgres ? db.postgres : '');
    if (!from) {
      throw new AdoptError([
        "--from is required: MMR's Postgres DSN (or set database.schema, and database.postgres to MMR's database)",
      ]);
    }
    if (from === db.postgres && !db.schema) {
      throw new AdoptError([
        "--from is the database this config writes to: set database.schema (e.g. media_repo) to keep media-repo's tables apart from MMR's, or point database.postgres at a new database",
      ]);
    }
    const source = await openPostgres({ dsn: from, readOnly: true, maxConnections: 3, maxIdleConnections: 1 }, ctx.log);
    const stores = await openConfiguredStores(ctx.config, 'import');
    try {
      if (flags.values['dry-run']) return await dryRun(source, stores.registry, opts, ctx);
      // Problems stop the run before the target database is created or touched.
      await preflight(source, stores.registry);
      const target = await openDatabase(ctx.config.global, ctx.log);
      try {
        await migrate(target, ctx.log);
        return await adopt(source, target, stores.registry, opts, ctx);
      } finally {
        await target.close();
      }
    } finally {
      await stores.close();
      await source.close();
    }
  } catch (e) {
    if (e instanceof AdoptError || (e as Error).name === 'ConfigError') {
      ctx.print(`media-repo import mmr: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

async function dryRun(
  source: Db,
  datastores: Parameters<typeof preflight>[1],
  opts: AdoptOptions,
  ctx: CommandContext,
): Promise<number> {
  const tables = await preflight(source, datastores);
  const counts = await sourceCounts(source, tables, opts);
  const db = ctx.config.global.database;
  ctx.print('dry run: nothing is written');
  ctx.print(
    `target: ${db.postgres ? `Postgres${db.schema ? `, schema ${db.schema}` : ''}` : `embedded database at ${db.embeddedPath}`}`,
  );
  for (const [phase, n] of Object.entries(counts)) ctx.print(`would adopt ${n} row(s) of MMR's ${phase}`);
  for (const ds of datastores.all()) ctx.print(`objects stay in datastore ${ds.id}: ${ds.describe()}`);
  return 0;
}

async function adopt(
  source: Db,
  target: Db,
  datastores: Parameters<typeof preflight>[1],
  opts: AdoptOptions,
  ctx: CommandContext,
): Promise<number> {
  const report = await adoptMmr({ source, target, datastores, progress: ctx.progress, signal: ctx.signal }, opts);
  ctx.progress.finish({ ...report });
  if (report.interrupted) {
    ctx.print('interrupted: run the same command again to resume where it stopped');
    return 130;
  }
  return 0;
}
