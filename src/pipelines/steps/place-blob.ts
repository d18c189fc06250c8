import type { Datastore, StagingWriter } from '../../datastores/datastore.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';

export interface StoredBlob {
  datastoreId: string;
  location: string;
  sizeBytes: number;
}

/** A stored blob of this size among the hash's candidates that still exists, if any. */
export async function findStoredBlob(
  datastores: DatastoreRegistry,
  size: number,
  candidates: StoredBlob[],
): Promise<{ datastoreId: string; location: string } | null> {
  for (const blob of candidates) {
    const store = datastores.get(blob.datastoreId);
    if (blob.sizeBytes === size && store && (await store.exists(blob.location)))
      return { datastoreId: blob.datastoreId, location: blob.location };
  }
  return null;
}

/**
 * Dedup step, run under the per-hash lock: reuse a stored blob with the same hash and size that
 * still exists (dropping our staging copy), or commit ours into `ds`. Returns where it lives.
 */
export interface Placement {
  /** Where a new blob goes. */
  ds: Datastore;
  /** The bytes, durable and hashed, not yet committed. */
  staging: StagingWriter;
  sha256: string;
  size: number;
  /** The blobs already stored under this hash (from the database, under the lock). */
  candidates: StoredBlob[];
}

export async function placeBlob(
  datastores: DatastoreRegistry,
  p: Placement,
): Promise<{ datastoreId: string; location: string; created: boolean }> {
  const { ds, staging, sha256, size, candidates } = p;
  const found = await findStoredBlob(datastores, size, candidates);
  if (found) {
    await staging.abort();
    return { ...found, created: false };
  }
  const location = await ds.commit(staging, sha256);
  datastores.addBytes(ds.id, size);
  // created: ours is the only copy, so a caller that then refuses the upload removes it.
  return { datastoreId: ds.id, location, created: true };
}

/** Stores bytes whose hash is known: putBlob where the store has it, else through staging. */
export async function putKnownBlob(
  datastores: DatastoreRegistry,
  ds: Datastore,
  bytes: Buffer,
  sha256: string,
): Promise<{ datastoreId: string; location: string }> {
  let location: string;
  if (ds.putBlob) {
    location = await ds.putBlob(bytes, sha256);
  } else {
    const staging = await ds.createStaging();
    try {
      staging.write(bytes);
      await staging.finish();
      location = await ds.commit(staging, sha256);
    } catch (e) {
      await staging.abort();
      throw e;
    }
  }
  datastores.addBytes(ds.id, bytes.length);
  return { datastoreId: ds.id, location };
}
