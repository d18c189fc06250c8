import type { DomainConfig, ThumbnailsSection } from '../config/schema.js';
import type { ImagePools } from '../pools/thumbnails.js';
import { thumbnailLimits } from '../pipelines/thumbnail.js';
import type { IdentifyImage } from './preview-image.js';

/** Raster types a preview image may be; the sniffed type decides, never the Content-Type. */
const PREVIEW_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/apng', 'image/gif', 'image/webp', 'image/avif'];

/** Identifies preview images on the static image pool, under the thumbnail pixel limits. */
export function poolIdentify(pools: ImagePools, cfg: () => ThumbnailsSection): IdentifyImage {
  return async (bytes) => {
    const r = await pools.identify(bytes, { ...thumbnailLimits(cfg()), types: PREVIEW_IMAGE_TYPES });
    return r.ok ? { contentType: r.type, width: r.width, height: r.height } : null;
  };
}

/** A preview image's BlurHash (MSC2448's `matrix:image:blurhash`), or null when off or unreadable. */
export type BlurhashImage = (bytes: Uint8Array, domain: DomainConfig) => Promise<string | null>;

export function poolBlurhash(pools: ImagePools): BlurhashImage {
  return async (bytes, domain) => {
    const msc = domain.featureSupport.MSC2448;
    if (!msc.enabled) return null;
    // A copy: the task takes its buffer (transferred), and the caller's bytes are stored.
    const r = await pools.blurhash(new Uint8Array(bytes), msc.xComponents, msc.yComponents, {
      ...thumbnailLimits(domain.thumbnails),
      types: PREVIEW_IMAGE_TYPES,
    });
    return r.ok ? r.blurhash : null;
  };
}
