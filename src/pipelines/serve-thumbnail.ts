import { Readable } from 'node:stream';
import { Errors, hasCode } from '../errors.js';
import type { DomainConfig, LoadedConfig } from '../config/schema.js';
import type { BlobCache } from '../cache/blob-cache.js';
import type { MediaBody } from '../http/types.js';
import type { Logger } from '../logging/logger.js';
import type { ResolveDeps } from './local-media.js';
import type { RemoteDeps } from './remote.js';
import {
  findOrCreateThumbnail,
  thumbnailKey,
  type Thumbnail,
  type ThumbnailDeps,
  type ThumbnailRequest,
} from './thumbnail.js';
import { datastoreOf } from './steps/datastore-of.js';
import { findMedia } from './steps/find-media.js';
import { cachedBlobBody } from './steps/serve-blob.js';
import { placeholderImage } from './steps/placeholder.js';

// A thumbnail request (client, legacy and federation endpoints): the source media, then the
// stored or newly made thumbnail, as a body the responder can serve.

export interface ServeThumbnailDeps extends ThumbnailDeps, ResolveDeps, RemoteDeps {
  config(): LoadedConfig;
  blobCache: BlobCache;
}

export interface ThumbnailAsk extends ThumbnailRequest {
  origin: string;
  mediaId: string;
  /** `allow_remote` (default true). */
  allowRemote: boolean;
  timeoutMs: number;
  authenticated: boolean;
  /** GET or HEAD (HEAD neither counts toward nor fills the blob cache). */
  httpMethod: string;
  domain: DomainConfig;
  log: Logger;
}

export interface ServedThumbnail {
  contentType: string;
  media: MediaBody;
}

// Step 1: the source: our own media, or another server's (fetched and stored first);
//         quarantined media is 404, or the placeholder image (quarantine.replaceThumbnails).
// Step 2: the thumbnail for its bucket: stored, or made now (one generation per key).
// Step 3: its body: the new bytes, or the stored blob through the blob cache.
export async function serveThumbnail(deps: ServeThumbnailDeps, r: ThumbnailAsk): Promise<ServedThumbnail> {
  let thumb;
  try {
    thumb = await thumbnailOf(deps, r);
  } catch (e) {
    if (hasCode(e, 'MR_ERR_QUARANTINED') && r.domain.quarantine.replaceThumbnails) {
      return placeholderImage(r.domain.quarantine.thumbnailPath);
    }
    throw e;
  }
  if (thumb.kind === 'fresh') {
    const { bytes, sha256, contentType } = thumb.fresh;
    return {
      contentType,
      media: {
        size: bytes.length,
        etag: sha256,
        readAll: async () => bytes,
        openStream: (start, end) => Readable.from([bytes.subarray(start, end + 1)]),
      },
    };
  }
  const row = thumb.row;
  const ds = datastoreOf(deps.datastores, row, r.log, 'thumbnail');
  // Every field named (as downloads do), so cachedBlobBody sees one object shape.
  const media = cachedBlobBody({
    cache: deps.blobCache,
    ds,
    blob: row,
    smallFileBytes: r.domain.downloads.smallFileBytes,
    method: r.httpMethod,
    below: undefined,
    counted: undefined,
  });
  return { contentType: row.contentType, media };
}

/** The federation endpoint's thumbnail of our own media, as a stream for its multipart answer. */
export async function federationThumbnail(
  deps: ServeThumbnailDeps,
  r: Omit<ThumbnailAsk, 'allowRemote' | 'httpMethod' | 'authenticated'>,
): Promise<{ contentType: string; body: Readable }> {
  const thumb = await thumbnailOf(deps, { ...r, allowRemote: false, httpMethod: 'GET', authenticated: true });
  if (thumb.kind === 'fresh') return { contentType: thumb.fresh.contentType, body: Readable.from([thumb.fresh.bytes]) };
  const ds = datastoreOf(deps.datastores, thumb.row, r.log, 'thumbnail');
  return {
    contentType: thumb.row.contentType,
    body: ds.openStream(thumb.row.location, { start: 0, end: thumb.row.sizeBytes - 1 }),
  };
}

async function thumbnailOf(deps: ServeThumbnailDeps, r: ThumbnailAsk): Promise<Thumbnail> {
  const { row: media, local } = await findMedia(deps, r, false);
  const cfg = r.domain.thumbnails;
  try {
    return await findOrCreateThumbnail(deps, {
      media,
      key: thumbnailKey(media, r, cfg),
      cfg,
      datastoreIds: r.domain.datastores.map((d) => d.id),
    });
  } catch (e) {
    // Spec: content too large to thumbnail is 413 for local media, 502 for remote.
    if (!local && hasCode(e, 'MR_ERR_THUMBNAIL_TOO_LARGE')) throw Errors.remoteTooLarge(e.message);
    throw e;
  }
}
