import type { DomainConfig, LoadedConfig } from '../config/schema.js';
import type { MediaRow } from '../db/media.js';
import type { MediaRowCache } from '../cache/media-rows.js';
import type { BodySource } from '../http/types.js';
import type { Logger } from '../logging/logger.js';
import { afterUpload, type ImageUploadDeps } from './upload-images.js';
import { storeUpload, type UploadDeps } from './steps/store-upload.js';
import { uploadQuotaFor } from './steps/quota.js';

// POST …/upload: a new file under a new media ID.

export interface UploadPipelineDeps extends UploadDeps, ImageUploadDeps {
  config(): LoadedConfig;
  mediaRows: MediaRowCache;
}

/** What a client sent: who, under which name and type, and the body still to be read. */
export interface UploadRequest {
  origin: string;
  userId: string;
  uploadName: string | null;
  contentType: string | null;
  body: BodySource;
  domain: DomainConfig;
  log: Logger;
}

/** The homeserver's limits, the uploader's quota, datastores and the freeze flag, for a store of this request. */
export function storeInput(deps: { config(): LoadedConfig }, r: UploadRequest) {
  const u = r.domain.uploads;
  return {
    origin: r.origin,
    userId: r.userId,
    uploadName: r.uploadName,
    contentType: r.contentType,
    body: r.body,
    maxBytes: u.maxBytes,
    minBytes: u.minBytes,
    datastoreIds: r.domain.datastores.map((d) => d.id),
    requiresAuth: deps.config().global.repo.freezeUnauthenticatedMedia,
    quota: uploadQuotaFor(u, r.userId, r.origin),
  };
}

// Step 1: stream, hash and store the body (deduplicated by hash); insert the row.
// Step 2: clients fetch a thumbnail or the file right after posting it: skip that first lookup.
// Step 3: an image gets its BlurHash (MSC2448) and pre-generated thumbnails.
export async function uploadMedia(
  deps: UploadPipelineDeps,
  r: UploadRequest,
): Promise<{ row: MediaRow; blurhash?: string }> {
  const { row, head } = await storeUpload(deps, storeInput(deps, r));
  r.log.info('upload stored', { mediaId: row.mediaId, size: row.sizeBytes, user: row.userId });
  deps.mediaRows.set(row);
  const { blurhash } = await afterUpload(deps, { row, head, domain: r.domain, blurhash: true });
  return { row, blurhash };
}
