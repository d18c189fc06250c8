import type { Datastore } from './datastore.js';

/**
 * Reads a whole blob into a buffer that owns its ArrayBuffer, so it can be transferred to a
 * worker thread. (Small Node buffers are slices of a shared pool; transferring one would
 * detach the pool under every other user of it.)
 */
export async function readOwned(ds: Datastore, location: string, size: number): Promise<Uint8Array> {
  // Unpooled and not zero-filled: the read overwrites every byte.
  const into = Buffer.allocUnsafeSlow(size);
  if (into.byteOffset !== 0 || into.buffer.byteLength !== size)
    throw new Error('allocUnsafeSlow returned a shared buffer');
  if (ds.readAt) {
    const got = await ds.readAt(location, 0, size, into);
    if (got.length !== size) throw new Error(`short read of ${location}: ${got.length} of ${size} bytes`);
    return new Uint8Array(into.buffer, 0, size);
  }
  const all = await ds.readAll(location, size);
  if (all.length !== size) throw new Error(`short read of ${location}: ${all.length} of ${size} bytes`);
  into.set(all);
  return new Uint8Array(into.buffer, 0, size);
}
