import type { LoadedConfig } from '../config/schema.js';
import { DatastoreRegistry } from '../datastores/registry.js';
import { UploadSinkPool } from '../pools/upload-sink.js';

/**
 * Every datastore the config names (global and per-domain), for a command that runs beside the
 * server (imports, exports). Its own staging tag: it never sweeps, and never mistakes a live
 * instance's staging objects for its own.
 */
export async function openConfiguredStores(
  config: LoadedConfig,
  tag: string,
): Promise<{ registry: DatastoreRegistry; close(): Promise<void> }> {
  const sinks = new UploadSinkPool();
  const registry = new DatastoreRegistry(`${tag}${process.pid}`, sinks);
  const byId = new Map(config.global.datastores.map((d) => [d.id, d]));
  for (const d of config.domains.values()) for (const ds of d.datastores) if (!byId.has(ds.id)) byId.set(ds.id, ds);
  try {
    await registry.sync([...byId.values()]);
  } catch (e) {
    await sinks.close();
    throw e;
  }
  return { registry, close: () => sinks.close() };
}
