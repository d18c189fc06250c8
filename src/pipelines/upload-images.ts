import type { DomainConfig } from '../config/schema.js';
import { byteLimit } from '../config/limits.js';
import type { MediaRow } from '../db/media.js';
import { readOwned } from '../datastores/read-owned.js';
import type { Logger } from '../logging/logger.js';
import type { ThumbnailDeps } from './thumbnail.js';
import { thumbnailLimits } from './thumbnail.js';
import type { Pregenerator } from './thumbnail-pregenerate.js';
import { sniffType, typeAllowed } from '../../workers/protocol.js';

// What happens to an upload that turns out to be thumbnailable (by its bytes: an image, and a
// video or audio file where thumbnails.types lists them): a BlurHash for the upload response
// (MSC2448) and thumbnail pre-generation in the background.

export interface ImageUploadDeps extends ThumbnailDeps {
  pregenerator: Pregenerator;
  log: Logger;
}

/** Returns the BlurHash when MSC2448 is on and the upload is thumbnailable. */
export async function afterUpload(
  deps: ImageUploadDeps,
  r: { row: MediaRow; head: Buffer; domain: DomainConfig; blurhash: boolean },
): Promise<{ blurhash?: string }> {
  const { row, head, domain } = r;
  const cfg = domain.thumbnails;
  const type = sniffType(head);
  if (!type || !typeAllowed(type, cfg.types) || row.sizeBytes > byteLimit(cfg.maxSourceBytes)) return {};
  deps.pregenerator.enqueue(
    row,
    cfg,
    domain.datastores.map((d) => d.id),
  );
  const msc2448 = domain.featureSupport.MSC2448;
  if (!r.blurhash || !msc2448.enabled) return {};
  try {
    const ds = deps.datastores.get(row.datastoreId);
    if (!ds) return {};
    const source = () => readOwned(ds, row.location, row.sizeBytes);
    const reply = await deps.thumbnails.blurhash(
      source,
      msc2448.xComponents,
      msc2448.yComponents,
      thumbnailLimits(cfg),
    );
    if (reply.ok) return { blurhash: reply.blurhash };
    deps.log.debug('no blurhash for this upload', { mediaId: row.mediaId, reason: reply.message });
  } catch (e) {
    // The upload itself succeeded; a missing blurhash must not fail it.
    deps.log.warn('blurhash failed', { mediaId: row.mediaId, error: e as Error });
  }
  return {};
}
