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
  /** Where finish({ prestage }) linked the bytes before the transaction, and whether that address was new. */
  prestaged?: { location: string; created: boolean };
}

/**
 * An upload refused, or served by a blob stored elsewhere, after prestaging: the address it
 * made is removed again (under the hash lock) unless a row points at it. One it did not make is
 * another upload's or a stored blob, and stays.
 */
export async function dropPrestaged(
  datastores: DatastoreRegistry,
  p: Pick<Placement, 'ds' | 'prestaged' | 'size'>,
  candidates: StoredBlob[],
): Promise<void> {
  const made = p.prestaged;
  if (!made?.created) return;
  if (candidates.some((b) => b.datastoreId === p.ds.id && b.location === made.location)) return;
  await p.ds.delete(made.location);
}

/** Removes a blob an upload placed and then was refused (under the hash lock), and counts it out. */
export async function discardBlob(datastores: DatastoreRegistry, ds: Datastore, location: string, size: number) {
  await ds.delete(location);
  datastores.addBytes(ds.id, -size);
}

export async function placeBlob(
  datastores: DatastoreRegistry,
  p: Placement,
): Promise<{ datastoreId: string; location: string; created: boolean }> {
  const { ds, staging, sha256, size, candidates, prestaged } = p;
  if (prestaged) return placePrestaged(datastores, p, prestaged);
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

/**
 * placeBlob for bytes already linked at their address in ds: that copy is used when a row
 * already points there or no other stored copy exists (put back from staging if a purge or
 * the orphan collector removed it meanwhile); a copy stored elsewhere wins otherwise, as it
 * does without prestaging, so each hash stays stored once.
 */
async function placePrestaged(
  datastores: DatastoreRegistry,
  p: Placement,
  prestaged: { location: string; created: boolean },
): Promise<{ datastoreId: string; location: string; created: boolean }> {
  const { ds, staging, sha256, size, candidates } = p;
  const ours = candidates.some((b) => b.datastoreId === ds.id && b.location === prestaged.location);
  const elsewhere = ours ? null : await findStoredBlob(datastores, size, candidates);
  if (elsewhere) {
    await dropPrestaged(datastores, p, candidates);
    return { ...elsewhere, created: false };
  }
  if (!(await ds.exists(prestaged.location))) await ds.commit(staging, sha256);
  // New to the rows (and to the tally) unless a row points there already; a refused upload's
  // discard removes it and counts it back out.
  if (!ours) datastores.addBytes(ds.id, size);
  return { datastoreId: ds.id, location: prestaged.location, created: !ours };
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
