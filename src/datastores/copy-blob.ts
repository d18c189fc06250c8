import type { Datastore } from './datastore.js';

export interface BlobToCopy {
  location: string;
  sha256: string;
  sizeBytes: number;
}

/**
 * Copies one blob into another datastore through its staging and commit, so the target never
 * shows a partial object. The staging writer hashes what it receives: a source that returns
 * other bytes than its rows describe (bit rot, a truncated file) is refused, not spread.
 * Returns the blob's location in `to`.
 */
export async function copyBlob(
  from: Datastore,
  to: Datastore,
  blob: BlobToCopy,
  signal?: AbortSignal,
): Promise<string> {
  const staging = await to.createStaging();
  const source = from.openStream(blob.location);
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      if (!staging.write(chunk as Buffer)) await new Promise<void>((resolve) => staging.onDrain(resolve));
    }
    const { sha256, size } = await staging.finish();
    if (sha256 !== blob.sha256 || size !== blob.sizeBytes) {
      throw new Error(
        `blob ${from.id}:${blob.location} reads as ${size} bytes with SHA-256 ${sha256}; its rows say ${blob.sizeBytes} bytes, ${blob.sha256}`,
      );
    }
    return await to.commit(staging, sha256);
  } catch (e) {
    source.destroy();
    await staging.abort().catch(() => undefined);
    throw e;
  }
}
