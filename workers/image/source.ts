import sharp, { type Sharp, type Metadata } from 'sharp';
import { Transformer } from '@napi-rs/image';
import { bmpSize, sniffType, typeAllowed } from './sniff.js';
import { isAnimatedPng, readApngInfo, splitApngFrames, composeApng } from './apng.js';
import { ffmpegAvailable, videoStill } from './video.js';
import type { ThumbnailLimits } from '../protocol.js';

// Opens a source for thumbnailing: identify it from its bytes, read its header, check every
// limit, and only then hand out decoders. Nothing here decodes pixels before the checks.

// Not in src/errors.ts's family: workers import nothing from src/. Its code crosses to src/ as
// ImageFailure (workers/protocol.ts), and src/errors.ts (imageFailure) says what it means there.
export class ImageError extends Error {
  constructor(
    readonly code: 'too_large' | 'unsupported' | 'corrupt',
    message: string,
  ) {
    super(message);
  }
}

export interface OpenedSource {
  /** The sniffed type; image/apng for animated PNGs. */
  type: string;
  /** Per page, as stored (before EXIF orientation). */
  width: number;
  height: number;
  pages: number;
  orientation: number;
  bytes: number;
  /** True when the pixels came from another container (a video still): never "the original". */
  derived: boolean;
  /** One page as a sharp pipeline (still thumbnails). */
  still(page: number): Promise<Sharp>;
  /** Every page resized to `size` and stacked with pageHeight set (animated thumbnails); delays
   * and loop count where the pipeline cannot carry them itself (composited APNG frames). */
  animated(
    size: { width: number; height: number },
    fit: 'cover' | 'fill',
  ): Promise<{ image: Sharp; delay?: number[]; loop?: number }>;
}

const ANIMATABLE = new Set(['image/gif', 'image/webp', 'image/apng']);
const SHARP_OPTIONS = { failOn: 'warning' as const, sequentialRead: true };

export function isAnimatable(type: string): boolean {
  return ANIMATABLE.has(type);
}

function checkPixels(width: number, height: number, limits: ThumbnailLimits): void {
  if (!(width > 0 && height > 0))
    throw new ImageError('corrupt', `Image header gives no usable size (${width}x${height})`);
  if (width * height > limits.maxPixels) {
    throw new ImageError(
      'too_large',
      `Image is ${width}x${height} pixels; the limit is ${limits.maxPixels} (thumbnails.maxPixels)`,
    );
  }
}

function checkFrames(pages: number, limits: ThumbnailLimits): void {
  if (pages > limits.maxFrames) {
    throw new ImageError(
      'too_large',
      `Image has ${pages} frames; the limit is ${limits.maxFrames} (thumbnails.maxFrames)`,
    );
  }
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
  if (type.startsWith('video/')) {
    if (!ffmpegAvailable())
      throw new ImageError('unsupported', `Cannot thumbnail ${type} content: ffmpeg is not installed`);
    let still: Buffer;
    try {
      still = await videoStill(source, type);
    } catch (e) {
      throw new ImageError('corrupt', `Could not decode the video: ${(e as Error).message.replace(/^corrupt: /, '')}`);
    }
    return openWithSharp(still, 'image/png', limits, true);
  }
  return openWithSharp(source, type, limits, false);
}
