import { Readable } from 'node:stream';
import type { Datastore } from '../../datastores/datastore.js';
import type { MediaBody } from '../../http/types.js';
import type { BlobCache, BlobLookup } from '../../cache/blob-cache.js';

// How the responder reads a stored blob (downloads and stored thumbnails): from the blob
// cache when it holds the bytes, else from the datastore in one call, by position or as a stream.

export interface StoredBlob {
  location: string;
  sizeBytes: number;
  sha256: string;
}

/** A blob read from its datastore: in one call when small, else by position or stream. */
export function blobBody(ds: Datastore, blob: StoredBlob, smallFileBytes: number): MediaBody {
  const { location, sizeBytes } = blob;
  return {
    size: sizeBytes,
    etag: blob.sha256,
    readAll: sizeBytes <= smallFileBytes ? () => ds.readAll(location, sizeBytes) : undefined,
    openStream: (start, end) => ds.openStream(location, { start, end }),
    readAt: ds.readAt ? (pos, len, into) => ds.readAt!(location, pos, len, into) : undefined,
  };
}

/** A body served from bytes in memory: whole when small, else by zero-copy slices so the
 * responder's tryEnd/onWritable path keeps a slow client from making uWS copy the whole blob. */
export function memoryBody(bytes: Buffer, etag: string, smallFileBytes: number): MediaBody {
  return {
    size: bytes.length,
    etag,
    readAll: bytes.length <= smallFileBytes ? () => Promise.resolve(bytes) : undefined,
    readAt: (pos, len) => Promise.resolve(bytes.subarray(pos, pos + len)),
    openStream: (start, end) => Readable.from([bytes.subarray(start, end + 1)]),
  };
}

export interface CachedBlobRequest {
  cache: BlobCache;
  ds: Datastore;
  blob: StoredBlob;
  smallFileBytes: number;
  /** HEAD requests neither count nor fill: they read nothing. */
  method: string;
  /** Layers below memory (Redis by hash) around the datastore body. */
  below?: (body: MediaBody) => MediaBody;
  /** This download's lookup when the caller already made it (it counts a download). */
  counted?: BlobLookup;
}

const asIs = (b: MediaBody) => b;

/**
 * blobBody through the blob cache: a hit is served from memory; the download that earns a
 * blob its place fills the cache from the bytes it reads anyway (small blobs, read whole) or
 * from one extra read (larger ones, at most maxFileSizeBytes by the cache's own check).
 */
export function cachedBlobBody(r: CachedBlobRequest): MediaBody {
  const { cache, ds, blob, smallFileBytes } = r;
  const below = r.below ?? asIs;
  if (!cache.enabled || r.method === 'HEAD') return below(blobBody(ds, blob, smallFileBytes));
  const found = r.counted ?? cache.lookup(blob.sha256, blob.sizeBytes);
  if (found.hit) return memoryBody(found.bytes, blob.sha256, smallFileBytes);
  const body = below(blobBody(ds, blob, smallFileBytes));
  if (!found.admit) return body;
  const readAll = body.readAll;
  if (readAll) {
    body.readAll = async () => {
      const bytes = await readAll();
      cache.offer(blob.sha256, bytes);
      return bytes;
    };
  } else {
    cache.fill(blob.sha256, blob.sizeBytes, () => ds.readAll(blob.location, blob.sizeBytes));
  }
  return body;
}
