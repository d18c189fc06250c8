import { createHash } from 'node:crypto';
import type { Sharp, OutputInfo } from 'sharp';
import { outputSize } from './geometry.js';
import { ImageError, isAnimatable, type OpenedSource } from './source.js';
import type { ThumbnailLimits, ThumbnailOutput, ThumbnailTarget } from '../protocol.js';

// Turns an opened source into the thumbnails asked for. Output rules (spec "Thumbnails",
// MSC2705): still output is JPEG for JPEG sources and PNG otherwise (clients and Complement
// accept only those two for non-animated thumbnails); animated output is animated WebP.

const ENCODE_TIMEOUT = { seconds: 30 };

/** EXIF orientations 5-8 swap width and height. */
function oriented(src: OpenedSource) {
  return src.orientation >= 5 ? { width: src.height, height: src.width } : { width: src.width, height: src.height };
}

/** Animate only what can be animated within the limits; otherwise the spec allows a still. */
function shouldAnimate(src: OpenedSource, target: ThumbnailTarget, limits: ThumbnailLimits): boolean {
  if (!target.animated || src.pages <= 1 || !isAnimatable(src.type)) return false;
  // A video's animation is its first seconds decoded at the output size: neither the file's
  // size nor its frame size says what it costs.
  if (src.type.startsWith('video/')) return true;
  return src.bytes <= limits.maxAnimateSizeBytes && src.width * src.height * src.pages <= limits.maxPixels;
}

/** The page a still is taken from: stillFrame of the way through, first page for huge APNGs
 * (every earlier APNG frame would have to be composited to reach a later one). */
function stillPage(src: OpenedSource, limits: ThumbnailLimits): number {
  if (src.pages <= 1) return 0;
  if (src.type === 'image/apng' && src.width * src.height * src.pages > limits.maxPixels) return 0;
  return Math.min(src.pages - 1, Math.floor(limits.stillFrame * src.pages));
}

/** sharp's output buffers cannot be detached, so copy once into one that can be transferred;
 * the hash is taken here too, so the first response can carry its ETag before it is stored. */
function transferable(buf: Buffer): { bytes: Uint8Array; sha256: string } {
  const bytes = new Uint8Array(new ArrayBuffer(buf.length));
  bytes.set(buf);
  return { bytes, sha256: createHash('sha256').update(buf).digest('hex') };
}

async function encode(image: Sharp): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await image.timeout(ENCODE_TIMEOUT).toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError('corrupt', `Could not decode the image: ${(e as Error).message}`);
  }
}

export async function renderTarget(
  src: OpenedSource,
  target: ThumbnailTarget,
  limits: ThumbnailLimits,
): Promise<ThumbnailOutput> {
  const fit = target.method === 'crop' ? 'cover' : 'fill';
  const animate = shouldAnimate(src, target, limits);
  const dims = oriented(src);
  const size = outputSize(dims, target, target.method);
  if (animate) {
    const { image, delay, loop, frames } = await src.animated(size, fit);
    const { data, info } = await encode(
      image.webp({ quality: 75, effort: 2, ...(delay ? { delay } : {}), ...(loop !== undefined ? { loop } : {}) }),
    );
    return {
      kind: 'thumbnail',
      ...transferable(data),
      contentType: 'image/webp',
      width: info.width,
      height: info.pageHeight ?? info.height,
      animated: true,
      frames: frames ?? src.pages,
    };
  }
  const staticOriginal =
    (src.type === 'image/jpeg' || src.type === 'image/png') && !src.derived && src.orientation <= 1;
  if (staticOriginal && size.width === dims.width && size.height === dims.height) {
    return { kind: 'original', contentType: src.type, width: dims.width, height: dims.height };
  }
  let image = (await src.still(stillPage(src, limits))).autoOrient().resize(size.width, size.height, { fit });
  const jpeg = src.type === 'image/jpeg';
  image = jpeg ? image.jpeg({ quality: 80 }) : image.png({ compressionLevel: 6 });
  const { data, info } = await encode(image);
  return {
    kind: 'thumbnail',
    ...transferable(data),
    contentType: jpeg ? 'image/jpeg' : 'image/png',
    width: info.width,
    height: info.height,
    animated: false,
    frames: 1,
  };
}
