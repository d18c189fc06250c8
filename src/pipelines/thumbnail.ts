import { Errors, MatrixError } from '../errors.js';
import type { ThumbnailsSection } from '../config/schema.js';
import type { Db } from '../db/driver.js';
import { lockHash, type MediaRow } from '../db/media.js';
import { findAnyBlobByHash, getThumbnail, insertThumbnail, type ThumbnailKey, type ThumbnailMethod, type ThumbnailRow } from '../db/thumbnails.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { readOwned } from '../datastores/read-owned.js';
import type { ThumbnailRowCache } from '../cache/thumbnail-rows.js';
import { thumbnailKeyString } from '../cache/thumbnail-rows.js';
import type { SingleFlight } from '../cache/singleflight.js';
import type { ThumbnailPools } from '../pools/thumbnails.js';
import type { ImageFailure, ThumbnailLimits, ThumbnailOutput } from '../../workers/protocol.js';
import { chooseSize } from './thumbnail-size.js';
import { placeBlob } from './steps/place-blob.js';

export interface ThumbnailDeps {
  db: Db;
  datastores: DatastoreRegistry;
  thumbnails: ThumbnailPools;
  thumbnailRows: ThumbnailRowCache;
  thumbnailFlights: SingleFlight<ThumbnailRow[]>;
}

export interface ThumbnailRequest {
  width: number;
  height: number;
  method: ThumbnailMethod;
  /** The client's `animated`; null when it did not say. */
  animated: boolean | null;
}

export function thumbnailLimits(cfg: ThumbnailsSection): ThumbnailLimits {
  return {
    maxPixels: cfg.maxPixels, maxFrames: cfg.maxFrames, maxAnimateSizeBytes: cfg.maxAnimateSizeBytes,
    stillFrame: cfg.stillFrame, types: cfg.types,
  };
}

/** The stored key a request maps to: its bucket, method and effective animation flag. */
export function thumbnailKey(media: MediaRow, req: ThumbnailRequest, cfg: ThumbnailsSection): ThumbnailKey {
  const size = chooseSize(cfg.sizes, req.width, req.height, cfg.dynamicSizing);
  // MSC2705: absent means "should not animate" unless the operator flips the default.
  const animated = cfg.allowAnimated && (req.animated ?? cfg.defaultAnimated);
  return { origin: media.origin, mediaId: media.mediaId, width: size.width, height: size.height, method: req.method, animated };
}

/** Worker failures become the spec's errors: 413 M_TOO_LARGE, else 400 M_UNKNOWN. */
function failureToError(f: ImageFailure): MatrixError {
  if (f.code === 'too_large') return new MatrixError('M_TOO_LARGE', 413, f.message);
  return new MatrixError('M_UNKNOWN', 400, f.message);
}

// Step 1: a stored thumbnail for this key (row cache, then database).
// Step 2: limits that need no bytes: the source size against maxSourceBytes.
// Step 3: one generation per key at a time (singleflight), then the stored row.
export async function findOrCreateThumbnail(deps: ThumbnailDeps, media: MediaRow, key: ThumbnailKey,
  cfg: ThumbnailsSection, datastoreIds: readonly string[]): Promise<ThumbnailRow> {
  const cached = deps.thumbnailRows.get(key);
  if (cached) return cached;
  const stored = await getThumbnail(deps.db, key);
  if (stored) {
    deps.thumbnailRows.set(stored);
    return stored;
  }
  checkSourceSize(media, cfg);
  const rows = await deps.thumbnailFlights.run(thumbnailKeyString(key), () => generateThumbnails(deps, media, [key], cfg, datastoreIds));
  return rows[0]!;
}

export function checkSourceSize(media: MediaRow, cfg: ThumbnailsSection): void {
  if (media.sizeBytes > cfg.maxSourceBytes) {
    throw new MatrixError('M_TOO_LARGE', 413, `Media is ${media.sizeBytes} bytes; thumbnails are made of at most ${cfg.maxSourceBytes} (thumbnails.maxSourceBytes)`);
  }
}

/**
 * Reads the source once, has the pool render every key from it, stores each output (deduplicated
 * by hash in a `thumbnails` datastore) and returns the rows in the order of `keys`.
 */
export async function generateThumbnails(deps: ThumbnailDeps, media: MediaRow, keys: ThumbnailKey[],
  cfg: ThumbnailsSection, datastoreIds: readonly string[]): Promise<ThumbnailRow[]> {
  const ds = deps.datastores.get(media.datastoreId);
  if (!ds) throw Errors.unknown('Media is stored in a datastore that is not configured');
  // Read only once the pool admits the task, so a long line holds no source bytes.
  const source = () => readOwned(ds, media.location, media.sizeBytes);
  const targets = keys.map((k) => ({ width: k.width, height: k.height, method: k.method, animated: k.animated }));
  const reply = await deps.thumbnails.thumbnail(source, targets, thumbnailLimits(cfg), keys.some((k) => k.animated));
  if (!reply.ok) throw failureToError(reply);
  const rows: ThumbnailRow[] = [];
  for (let i = 0; i < keys.length; i++) {
    const row = await storeOutput(deps, media, keys[i]!, reply.outputs[i]!, datastoreIds);
    deps.thumbnailRows.set(row);
    rows.push(row);
  }
  return rows;
}

async function storeOutput(deps: ThumbnailDeps, media: MediaRow, key: ThumbnailKey, out: ThumbnailOutput,
  datastoreIds: readonly string[]): Promise<ThumbnailRow> {
  const base = { ...key, contentType: out.contentType, outWidth: out.width, outHeight: out.height, creationTs: Date.now() };
  if (out.kind === 'original') {
    // The output would equal the source: point at the source's blob instead of copying it.
    return insertThumbnail(deps.db, { ...base, sha256: media.sha256, sizeBytes: media.sizeBytes, datastoreId: media.datastoreId, location: media.location });
  }
  const ds = deps.datastores.pick('thumbnails', datastoreIds);
  if (!ds) throw Errors.unavailable('No datastore accepts thumbnails for this homeserver');
  const staging = await ds.createStaging();
  try {
    staging.write(Buffer.from(out.bytes.buffer, out.bytes.byteOffset, out.bytes.byteLength));
    const { sha256, size } = await staging.finish();
    return await deps.db.tx(async (q) => {
      await lockHash(q, sha256);
      const { datastoreId, location } = await placeBlob(deps.datastores, ds, staging, sha256, size, await findAnyBlobByHash(q, sha256));
      return insertThumbnail(q, { ...base, sha256, sizeBytes: size, datastoreId, location });
    });
  } catch (e) {
    await staging.abort();
    throw e;
  }
}
