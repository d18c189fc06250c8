import { Errors } from '../../errors.js';
import type { Datastore } from '../../datastores/datastore.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';
import type { Logger } from '../../logging/logger.js';

/**
 * The datastore a media or thumbnail row points at. A row naming a datastore that is not
 * configured (removed from the config while rows still use it) is an operator error: logged,
 * and answered 500.
 */
export function datastoreOf(
  datastores: DatastoreRegistry,
  row: { datastoreId: string; mediaId: string },
  log: Logger,
  kind: 'media' | 'thumbnail',
): Datastore {
  const ds = datastores.get(row.datastoreId);
  if (ds) return ds;
  log.error(`${kind} row points at an unknown datastore`, { datastore: row.datastoreId, mediaId: row.mediaId });
  throw Errors.unknown(`${kind === 'media' ? 'Media' : 'Thumbnail'} is stored in a datastore that is not configured`);
}
