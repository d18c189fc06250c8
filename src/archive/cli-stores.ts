import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Db } from '../db/driver.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { openDatabase } from '../db/open.js';
import { migrate } from '../db/migrate.js';
import { bytesPerDatastore } from '../db/media.js';
import { openConfiguredStores } from '../import/open-stores.js';

// The database and datastores for an export or import run beside (or instead of) the server.
// Imports migrate first (the target may be a fresh database); the stored-bytes tally is loaded
// so `pick` balances imported blobs as the server would.

export interface CliStores {
  db: Db;
  datastores: DatastoreRegistry;
  close(): Promise<void>;
}

export async function openCliStores(
  config: LoadedConfig,
  log: Logger,
  opts: { migrate: boolean; tag: string },
): Promise<CliStores> {
  const db = await openDatabase(config.global, log);
  let stores: Awaited<ReturnType<typeof openConfiguredStores>> | null = null;
  const close = async () => {
    await stores?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
  };
  try {
    if (opts.migrate) await migrate(db, log);
    stores = await openConfiguredStores(config, opts.tag);
    stores.registry.setTally(await bytesPerDatastore(db));
    return { db, datastores: stores.registry, close };
  } catch (e) {
    await close();
    throw e;
  }
}
