import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from './driver.js';
import type { Logger } from '../logging/logger.js';
import { ConfigError } from '../config/checks.js';

export const MIGRATIONS_DIR = new URL('../../../migrations/', import.meta.url).pathname;

// Applies migrations/NNNN_name.up.sql in order, each in its own transaction. An advisory
// lock keeps two instances starting at once from running the same migration twice.
export async function migrate(db: Db, log: Logger, dir = MIGRATIONS_DIR): Promise<number> {
  await refuseForeignTables(db);
  // Asked first: IF NOT EXISTS alone has Postgres print a NOTICE on every start (libpq: stderr).
  const has = await db.query<{ ours: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS ours");
  if (!has.rows[0]?.ours)
    await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)`);
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_.+\.up\.sql$/.test(f))
    .sort();
  let applied = 0;
  await db.tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock(7231001)');
    const done = new Set(
      (await q.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)),
    );
    for (const f of files) {
      const version = Number(f.slice(0, 4));
      if (done.has(version)) continue;
      const sql = readFileSync(join(dir, f), 'utf8');
      for (const stmt of splitStatements(sql)) await q.query(stmt);
      await q.query('INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)', [
        version,
        f,
        Date.now(),
      ]);
      log.info('applied migration', { migration: f });
      applied++;
    }
  });
  return applied;
}

/**
 * Splits on semicolons at line ends; our migrations keep one statement per `;\n`. A `$$ … $$`
 * body (a PL/pgSQL function, 0006) has such semicolons inside it: it is kept whole.
 */
export function splitStatements(sql: string): string[] {
  // Odd-numbered pieces lie between a pair of `$$`: only the others are split.
  const out: string[] = [''];
  sql.split('$$').forEach((piece, i) => {
    if (i % 2 === 1) {
      out[out.length - 1] += `$$${piece}$$`;
      return;
    }
    const [first, ...rest] = piece.split(/;\s*\n/);
    out[out.length - 1] += first;
    out.push(...rest);
  });
  return out.map((s) => s.replace(/^\s*--.*$/gm, '').trim()).filter((s) => s.length > 0);
}

/**
 * A `media` table without our schema_migrations is another program's: MMR's, when an operator
 * points media-repo at MMR's database. Creating ours beside it would fail half-way ("relation
 * media already exists"); say what to do instead.
 */
async function refuseForeignTables(db: Db): Promise<void> {
  const r = await db.query<{ media: boolean; ours: boolean }>(
    "SELECT to_regclass('media') IS NOT NULL AS media, to_regclass('schema_migrations') IS NOT NULL AS ours",
  );
  const row = r.rows[0];
  if (row?.media && !row.ours) {
    throw new ConfigError(
      "database: this database already holds a `media` table that is not media-repo's (MMR's?). " +
        'Set database.schema (e.g. media_repo) to give media-repo a schema of its own in it, or point ' +
        "database.postgres at a new database; then adopt MMR's media with `media-repo import mmr`.",
    );
  }
}
