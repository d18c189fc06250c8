import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Db } from './driver.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';
import { postgresOpenError } from './open-error.js';

/** database.postgres set: real Postgres; empty: the embedded PGlite database. */
export async function openDatabase(cfg: Config, log: Logger, cwd = process.cwd()): Promise<Db> {
  const dsn = cfg.database.postgres.trim();
  if (dsn) {
    return openPostgres(
      {
        dsn,
        schema: cfg.database.schema,
        maxConnections: cfg.database.pool.maxConnections,
        maxIdleConnections: cfg.database.pool.maxIdleConnections,
        timeouts: cfg.database.timeouts,
      },
      log,
    ).catch((e: unknown) => {
      throw postgresOpenError(dsn, e);
    }); // one line naming the key, not a pg stack
  }
  if (cfg.database.schema) log.warn('database.schema applies to Postgres only; the embedded database ignores it');
  const path = cfg.database.embeddedPath;
  const dir = path === 'memory://' || isAbsolute(path) ? path : resolve(cwd, path);
  log.info('using the embedded PGlite database', { path: dir });
  return openPglite(dir, cfg.database.timeouts.transactionSeconds, log);
}
