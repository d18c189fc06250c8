import type { Sharp } from 'sharp';
import type { ThumbnailLimits } from '../protocol.js';

// What every source opener hands the renderer, and the one error family of the workers.

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
   * and loop count where the pipeline cannot carry them itself (composited APNG frames, video);
   * `frames` when the count is only known once decoded (video: `pages` is then an upper bound). */
  animated(
    size: { width: number; height: number },
    fit: 'cover' | 'fill',
  ): Promise<{ image: Sharp; delay?: number[]; loop?: number; frames?: number }>;
}

export function checkPixels(width: number, height: number, limits: ThumbnailLimits): void {
  if (!(width > 0 && height > 0))
    throw new ImageError('corrupt', `Image header gives no usable size (${width}x${height})`);
  if (width * height > limits.maxPixels) {
    throw new ImageError(
      'too_large',
      `Image is ${width}x${height} pixels; the limit is ${limits.maxPixels} (thumbnails.maxPixels)`,
    );
  }
}

export function checkFrames(pages: number, limits: ThumbnailLimits): void {
  if (pages > limits.maxFrames) {
    throw new ImageError(
      'too_large',
      `Image has ${pages} frames; the limit is ${limits.maxFrames} (thumbnails.maxFrames)`,
    );
  }
}
