import { Errors, imageFailure } from '../errors.js';
import type { ThumbnailsSection } from '../config/schema.js';
import { byteLimit } from '../config/limits.js';
import type { Db } from '../db/driver.js';
import { holdMediaRow, lockHash, type MediaRow } from '../db/media.js';
import {
  findAnyBlobByHash,
  getThumbnail,
  insertThumbnail,
  type ThumbnailKey,
  type ThumbnailMethod,
  type ThumbnailRow,
} from '../db/thumbnails.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { readOwned } from '../datastores/read-owned.js';
import type { ThumbnailRowCache } from '../cache/thumbnail-rows.js';
import { thumbnailKeyString } from '../cache/thumbnail-rows.js';
import type { SingleFlight } from '../cache/singleflight.js';
import type { FreshThumbnail, FreshThumbnails } from '../cache/fresh-thumbnails.js';
import type { Logger } from '../logging/logger.js';
import type { ImagePools } from '../pools/thumbnails.js';
import type { ThumbnailLimits } from '../../workers/protocol.js';
import { chooseSize } from './thumbnail-size.js';
import { findStoredBlob, putKnownBlob } from './steps/place-blob.js';
import { datastoreOf } from './steps/datastore-of.js';
import { coordinate } from '../redis/locks.js';
import type { SharedLocks } from '../threads/shared-locks.js';
import type { RedisRing } from '../redis/ring.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';

export interface ThumbnailDeps {
  db: Db;
  datastores: DatastoreRegistry;
  thumbnails: ImagePools;
  thumbnailRows: ThumbnailRowCache;
  thumbnailFlights: SingleFlight<Thumbnail[]>;
  freshThumbnails: FreshThumbnails;
  log: Logger;
  /** One generation per key across instances too, where Redis is on. */
  redis?: { ring: RedisRing };
  /** One per key across this process's HTTP threads, when it has several. */
  threadLocks?: SharedLocks;
  metrics?: MediaMetrics;
}

/** A generation lock lives this long at most; a waiter waits up to THUMBNAIL_LOCK_WAIT_MS. */
const THUMBNAIL_LOCK_TTL_MS = 60_000;
const THUMBNAIL_LOCK_WAIT_MS = 30_000;

/** A thumbnail to serve: a stored row, or bytes just generated whose row is being written. */
export type Thumbnail = { kind: 'stored'; row: ThumbnailRow } | { kind: 'fresh'; fresh: FreshThumbnail };

export interface ThumbnailRequest {
  width: number;
  height: number;
  method: ThumbnailMethod;
  /** The client's `animated`; null when it did not say. */
  animated: boolean | null;
}

export function thumbnailLimits(cfg: ThumbnailsSection): ThumbnailLimits {
  return {
    maxPixels: cfg.maxPixels,
    maxFrames: cfg.maxFrames,
    maxAnimateSizeBytes: byteLimit(cfg.maxAnimateSizeBytes),
    stillFrame: cfg.stillFrame,
    types: cfg.types,
  };
}

/** The stored key a request maps to: its bucket, method and effective animation flag. */
export function thumbnailKey(media: MediaRow, req: ThumbnailRequest, cfg: ThumbnailsSection): ThumbnailKey {
  const size = chooseSize(cfg.sizes, req.width, req.height, cfg.dynamicSizing);
  // MSC2705: absent means "should not animate" unless the operator flips the default.
  const animated = cfg.allowAnimated && (req.animated ?? cfg.defaultAnimated);
  return {
    origin: media.origin,
    mediaId: media.mediaId,
    width: size.width,
    height: size.height,
    method: req.method,
    animated,
  };
}

// Step 1: a stored thumbnail for this key (row cache, bytes still being stored, database).
// Step 2: limits that need no bytes: the source size against maxSourceBytes.
// Step 3: one generation per key at a time (singleflight); answer with the new bytes while
//         they are stored in the background.
export interface ThumbnailJob {
  media: MediaRow;
  cfg: ThumbnailsSection;
  /** The homeserver's datastores (a `thumbnails` one stores the output). */
  datastoreIds: readonly string[];
}

export async function findOrCreateThumbnail(
  deps: ThumbnailDeps,
  job: ThumbnailJob & { key: ThumbnailKey },
): Promise<Thumbnail> {
  const { media, key, cfg } = job;
  const cached = deps.thumbnailRows.get(key);
  if (cached) return { kind: 'stored', row: cached };
  const fresh = deps.freshThumbnails.get(key);
  if (fresh) return { kind: 'fresh', fresh };
  const stored = await getThumbnail(deps.db, key);
  if (stored) {
    deps.thumbnailRows.set(stored);
    return { kind: 'stored', row: stored };
  }
  checkSourceSize(media, cfg);
  const name = thumbnailKeyString(key);
  // Held until the new thumbnail is stored, so another instance's waiter finds its row.
  const made = await deps.thumbnailFlights.run(name, () =>
    coordinate(
      deps.redis?.ring,
      `thumbnail:${name}`,
      {
        ttlMs: THUMBNAIL_LOCK_TTL_MS,
        waitMs: THUMBNAIL_LOCK_WAIT_MS,
        threads: deps.threadLocks,
        recheck: async () => {
          const row = await getThumbnail(deps.db, key);
          return row ? [{ kind: 'stored', row }] : null;
        },
      },
      async (holdUntil) => {
        const generated = await generateThumbnails(deps, { ...job, keys: [key] });
        holdUntil(generated.stored);
        return generated.results;
      },
    ),
  );
  return made[0]!;
}

function checkSourceSize(media: MediaRow, cfg: ThumbnailsSection): void {
  if (media.sizeBytes > byteLimit(cfg.maxSourceBytes)) {
    throw Errors.thumbnailTooLarge(
      `Media is ${media.sizeBytes} bytes; thumbnails are made of at most ${cfg.maxSourceBytes} (thumbnails.maxSourceBytes)`,
    );
  }
}

/**
 * Reads the source once and has the pool render every key from it. Returns the thumbnails in
 * the order of `keys` as soon as they exist; `stored` settles when each output is stored
 * (deduplicated by hash in a `thumbnails` datastore) with its row. Store failures are logged,
 * and the next request generates again.
 */
export async function generateThumbnails(
  deps: ThumbnailDeps,
  job: ThumbnailJob & { keys: ThumbnailKey[] },
): Promise<{ results: Thumbnail[]; stored: Promise<unknown> }> {
  const { media, keys, cfg, datastoreIds } = job;
  const ds = datastoreOf(deps.datastores, media, deps.log, 'media');
  // Read only once the pool admits the task, so a long line holds no source bytes.
  const source = () => readOwned(ds, media.location, media.sizeBytes);
  const targets = keys.map((k) => ({ width: k.width, height: k.height, method: k.method, animated: k.animated }));
  const reply = await deps.thumbnails.thumbnail(
    source,
    targets,
    thumbnailLimits(cfg),
    keys.some((k) => k.animated),
  );
  if (!reply.ok) throw imageFailure(reply);
  const results: Thumbnail[] = [];
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const out = reply.outputs[i]!;
    if (out.kind === 'original') {
      // Only a row to write (it points at the source's blob): cheap enough to wait for.
      const row = await insertThumbnail(deps.db, {
        ...key,
        contentType: out.contentType,
        outWidth: out.width,
        outHeight: out.height,
        creationTs: Date.now(),
        sha256: media.sha256,
        sizeBytes: media.sizeBytes,
        datastoreId: media.datastoreId,
        location: media.location,
      });
      deps.thumbnailRows.set(row);
      results.push({ kind: 'stored', row });
      continue;
    }
    // Counted only when pixels were made ("original" serves the source as it is). With
    // dynamicSizing any size can be asked for: those share one label value, "dynamic".
    const listed = cfg.sizes.some((sz) => sz.width === key.width && sz.height === key.height);
    deps.metrics?.thumbnailsGenerated.inc({
      width: listed ? key.width : 'dynamic',
      height: listed ? key.height : 'dynamic',
      method: key.method,
      animated: String(key.animated),
      origin: deps.metrics.originLabel(media.origin),
    });
    const fresh: FreshThumbnail = {
      key,
      bytes: Buffer.from(out.bytes.buffer, out.bytes.byteOffset, out.bytes.byteLength),
      sha256: out.sha256,
      contentType: out.contentType,
      outWidth: out.width,
      outHeight: out.height,
    };
    const write = storeThumbnail(deps, fresh, datastoreIds).then(
      (row) => deps.thumbnailRows.set(row),
      (e: Error) => {
        deps.log.warn('storing a thumbnail failed; it will be generated again', { mediaId: key.mediaId, error: e });
      },
    );
    deps.freshThumbnails.hold(fresh, write);
    writes.push(write);
    results.push({ kind: 'fresh', fresh });
  }
  return { results, stored: Promise.all(writes) };
}

/**
 * Writes a generated thumbnail's blob and then its row. The hash is known, so under the
 * per-hash lock an existing blob is reused before anything is written.
 */
async function storeThumbnail(
  deps: ThumbnailDeps,
  fresh: FreshThumbnail,
  datastoreIds: readonly string[],
): Promise<ThumbnailRow> {
  const ds = deps.datastores.pick('thumbnails', datastoreIds);
  if (!ds) throw Errors.unavailable('No datastore accepts thumbnails for this homeserver');
  const { sha256, bytes } = fresh;
  return deps.db.tx(async (q) => {
    await lockHash(q, sha256);
    // A media purged meanwhile gets no thumbnail row (nor a blob) that nothing would free.
    if (!(await holdMediaRow(q, fresh.key.origin, fresh.key.mediaId))) throw Errors.notFound();
    const blob =
      (await findStoredBlob(deps.datastores, bytes.length, await findAnyBlobByHash(q, sha256))) ??
      (await putKnownBlob(deps.datastores, ds, bytes, sha256));
    return insertThumbnail(q, {
      ...fresh.key,
      contentType: fresh.contentType,
      outWidth: fresh.outWidth,
      outHeight: fresh.outHeight,
      creationTs: Date.now(),
      sha256,
      sizeBytes: bytes.length,
      ...blob,
    });
  });
}
