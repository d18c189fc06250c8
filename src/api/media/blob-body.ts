import type { Datastore } from '../../datastores/datastore.js';
import type { MediaBody } from '../../http/types.js';

/** Media is immutable under its ID: clients and proxies may keep it (privately). */
export const MEDIA_CACHE_CONTROL = 'private, max-age=259200, immutable';

/** How the responder reads a stored blob: in one call when small, else by position or stream. */
export function blobBody(ds: Datastore, blob: { location: string; sizeBytes: number; sha256: string }, smallFileBytes: number): MediaBody {
  const { location, sizeBytes } = blob;
  return {
    size: sizeBytes,
    etag: blob.sha256,
    readAll: sizeBytes <= smallFileBytes ? () => ds.readAll(location, sizeBytes) : undefined,
    openStream: (start, end) => ds.openStream(location, { start, end }),
    readAt: ds.readAt ? (pos, len, into) => ds.readAt!(location, pos, len, into) : undefined,
  };
}
