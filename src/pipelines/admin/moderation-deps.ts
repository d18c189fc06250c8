import type { LoadedConfig } from '../../config/schema.js';
import type { Db } from '../../db/driver.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';
import type { CacheInvalidator, MediaChange } from '../../cache/invalidation.js';
import type { Logger } from '../../logging/logger.js';
import type { Queryable } from '../../db/driver.js';
import { insertInvalidation } from '../../db/invalidations.js';
export type { MediaSelection } from '../../db/moderation.js';

/** What quarantine, purge and attribute changes use. */
export interface ModerationDeps {
  config(): LoadedConfig;
  db: Db;
  datastores: DatastoreRegistry;
  invalidator: CacheInvalidator;
  log: Logger;
}

/** Who acts, and over what: a repo admin acts on every homeserver (scope null), a local admin
 * only on media whose origin is its own homeserver. */
export interface Actor {
  userId: string;
  /** The request's homeserver (Host). */
  serverName: string;
  /** null: fleet-wide (repo admin); else the one origin this actor may touch. */
  scopeOrigin: string | null;
}

export function mediaKeyString(k: { origin: string; mediaId: string }): string {
  return `${k.origin}/${k.mediaId}`;
}

/** Writes the change to the invalidation log inside the state change's transaction. */
export async function logChange(q: Queryable, change: MediaChange): Promise<void> {
  if (change.media.length === 0 && change.hashes.length === 0) return;
  await insertInvalidation(q, JSON.stringify(change));
}

/** Our own homeservers (purged IDs of theirs are reserved; remote-only purges skip them). */
export function localOrigins(config: LoadedConfig): string[] {
  return [...config.domains.keys()];
}
