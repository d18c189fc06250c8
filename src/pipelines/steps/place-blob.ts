import type { Datastore, StagingWriter } from '../../datastores/datastore.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';

export interface StoredBlob {
  datastoreId: string;
  location: string;
  sizeBytes: number;
}

/**
 * Dedup step, run under the per-hash lock: reuse a stored blob with the same hash and size that
 * still exists (dropping our staging copy), or commit ours into `ds`. Returns where it lives.
 */
export async function placeBlob(datastores: DatastoreRegistry, ds: Datastore, staging: StagingWriter, sha256: string,
  size: number, candidates: StoredBlob[]): Promise<{ datastoreId: string; location: string }> {
  for (const blob of candidates) {
    const store = datastores.get(blob.datastoreId);
    if (blob.sizeBytes === size && store && (await store.exists(blob.location))) {
      await staging.abort();
      return { datastoreId: blob.datastoreId, location: blob.location };
    }
  }
  const location = await ds.commit(staging, sha256);
  datastores.addBytes(ds.id, size);
  return { datastoreId: ds.id, location };
}
