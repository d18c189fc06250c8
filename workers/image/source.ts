import sharp, { type Metadata } from 'sharp';
import { Transformer } from '@napi-rs/image';
import { bmpSize, sniffType, typeAllowed } from './sniff.js';
import { isAnimatedPng, readApngInfo, splitApngFrames, composeApng } from './apng.js';
import type { ThumbnailLimits } from '../protocol.js';
import { checkFrames, checkPixels, ImageError, type OpenedSource } from './image-error.js';
import { openAudio, openHeif, openJxl, openVideo } from './external-sources.js';

export { ImageError, type OpenedSource };

// Opens a source for thumbnailing: identify it from its bytes, read its header, check every
// limit, and only then hand out decoders. Nothing here decodes pixels before the checks.

// Video animates too: its first seconds, decoded at the output size (external-sources.ts).
const ANIMATABLE = new Set(['image/gif', 'image/webp', 'image/apng', 'video/mp4', 'video/webm', 'video/quicktime']);
const SHARP_OPTIONS = { failOn: 'warning' as const, sequentialRead: true };

export function isAnimatable(type: string): boolean {
  return ANIMATABLE.has(type);
}

async function decodeFramePng(png: Buffer) {
  // 8-bit sRGB RGBA whatever the frame's bit depth or colour type (grey, 16-bit, palette).
  const { data, info } = await sharp(png, SHARP_OPTIONS)
    .toColourspace('srgb')
    .ensureAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const rawImage = (data: Buffer, width: number, height: number, pages = 1) =>
  sharp(data, { raw: { width, height: height * pages, channels: 4, ...(pages > 1 ? { pageHeight: height } : {}) } });

function openApng(source: Buffer, limits: ThumbnailLimits): OpenedSource {
  let info;
  try {
    info = readApngInfo(source);
  } catch (e) {
    throw new ImageError('corrupt', `Could not read the image: ${(e as Error).message}`);
  }
  if (!info) throw new ImageError('corrupt', 'Could not read the image: not an APNG');
  checkPixels(info.width, info.height, limits);
  checkFrames(info.numFrames, limits);
  const split = () => {
    try {
      return splitApngFrames(source, limits.maxFrames);
    } catch (e) {
      throw new ImageError('corrupt', `Could not read the image: ${(e as Error).message}`);
    }
  };
  const compose = async (only?: number) => {
    try {
      return await composeApng(split(), decodeFramePng, only === undefined ? {} : { only });
    } catch (e) {
      if (e instanceof ImageError) throw e;
      throw new ImageError('corrupt', `Could not decode the image: ${(e as Error).message}`);
    }
  };
  return {
    type: 'image/apng',
    width: info.width,
    height: info.height,
    pages: info.numFrames,
    orientation: 1,
    bytes: source.length,
    derived: false,
    async still(page) {
      const c = await compose(page);
      return rawImage(c.data, c.width, c.height);
    },
    async animated(size, fit) {
      const c = await compose();
      // sharp resizes raw multi-page input as one tall image, so each page is resized on its own.
      const frameBytes = c.width * c.height * 4;
      const pages: Buffer[] = [];
      for (let i = 0; i < c.pages; i++) {
        const page = c.data.subarray(i * frameBytes, (i + 1) * frameBytes);
        pages.push(await rawImage(page, c.width, c.height).resize(size.width, size.height, { fit }).raw().toBuffer());
      }
      return {
        image: rawImage(Buffer.concat(pages), size.width, size.height, c.pages),
        delay: c.delays,
        loop: info.numPlays,
      };
    },
  };
}

/** BMP: libvips (as sharp ships it) has no BMP loader; @napi-rs/image decodes it. */
function openBmp(source: Buffer, limits: ThumbnailLimits): OpenedSource {
  const size = bmpSize(source);
  if (!size) throw new ImageError('corrupt', 'Could not read the image header: not a BMP');
  const { width, height } = size;
  checkPixels(width, height, limits);
  return {
    type: 'image/bmp',
    width,
    height,
    pages: 1,
    orientation: 1,
    bytes: source.length,
    derived: false,
    async still() {
      let raw: Buffer;
      try {
        raw = await new Transformer(source).rawPixels();
      } catch (e) {
        throw new ImageError('corrupt', `Could not decode the image: ${(e as Error).message}`);
      }
      // RGB or RGBA, as the bitmap had it.
      const channels = raw.length / (width * height);
      if (channels !== 3 && channels !== 4)
        throw new ImageError('corrupt', 'Could not decode the image: short pixel data');
      return sharp(raw, { raw: { width, height, channels } });
    },
    async animated(size, fit) {
      return { image: (await this.still(0)).resize(size.width, size.height, { fit }) };
    },
  };
}

async function openWithSharp(
  source: Buffer,
  type: string,
  limits: ThumbnailLimits,
  derived: boolean,
): Promise<OpenedSource> {
  let meta: Metadata;
  try {
    // Header only: libvips reads dimensions without decoding pixels.
    meta = await sharp(source, { ...SHARP_OPTIONS, limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError('corrupt', `Could not read the image header: ${(e as Error).message}`);
  }
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  checkPixels(width, height, limits);
  const pages = isAnimatable(type) ? Math.max(1, meta.pages ?? 1) : 1;
  checkFrames(pages, limits);
  return {
    type,
    width,
    height,
    pages,
    orientation: meta.orientation ?? 1,
    bytes: source.length,
    derived,
    async still(page) {
      return sharp(source, { ...SHARP_OPTIONS, limitInputPixels: limits.maxPixels, ...(pages > 1 ? { page } : {}) });
    },
    async animated(size, fit) {
      const image = sharp(source, { ...SHARP_OPTIONS, animated: true, limitInputPixels: width * height * pages });
      return { image: image.resize(size.width, size.height, { fit }) };
    },
  };
}

/** Identifies and opens `source`; throws ImageError when it is refused. */
export async function openSource(source: Buffer, limits: ThumbnailLimits): Promise<OpenedSource> {
  if (source.length === 0) throw new ImageError('unsupported', 'Cannot thumbnail an empty file');
  let type: string | null = sniffType(source);
  if (!type) throw new ImageError('unsupported', 'Cannot thumbnail this content: not a recognised image format');
  if (type === 'image/png' && isAnimatedPng(source) && typeAllowed('image/apng', limits.types)) type = 'image/apng';
  if (!typeAllowed(type, limits.types))
    throw new ImageError('unsupported', `Cannot thumbnail ${type} content (not in thumbnails.types)`);
  if (type === 'image/apng') return openApng(source, limits);
  if (type === 'image/bmp') return openBmp(source, limits);
  if (type.startsWith('video/')) return openVideo(source, type, limits);
  if (type.startsWith('audio/')) return openAudio(source, type, limits);
  if (type === 'image/jxl') return openJxl(source, limits);
  // HEIF other than AVIF: sharp's libheif decodes AV1 only, and sequences need their own path.
  if (type.startsWith('image/hei')) return openHeif(source, type, limits);
  return openWithSharp(source, type, limits, false);
}
