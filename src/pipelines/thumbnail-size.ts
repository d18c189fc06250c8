import type { ThumbnailSize } from '../config/schema.js';

// Which size to generate for a request (spec "Thumbnails": the result may be larger than
// asked, never smaller unless the original is).

/**
 * The smallest configured bucket (by area) at least as large as asked on both sides, else the
 * largest. With dynamicSizing, the asked size itself, each side capped by the largest bucket.
 */
export function chooseSize(
  sizes: readonly ThumbnailSize[],
  width: number,
  height: number,
  dynamic: boolean,
): ThumbnailSize {
  const area = (s: ThumbnailSize) => s.width * s.height;
  let largest = sizes[0]!;
  for (const s of sizes) if (area(s) > area(largest)) largest = s;
  if (dynamic) {
    const maxW = Math.max(...sizes.map((s) => s.width));
    const maxH = Math.max(...sizes.map((s) => s.height));
    return { width: Math.min(width, maxW), height: Math.min(height, maxH) };
  }
  let best: ThumbnailSize | null = null;
  for (const s of sizes) {
    if (s.width >= width && s.height >= height && (!best || area(s) < area(best))) best = s;
  }
  return best ?? largest;
}

/** The spec's recommended pre-generated sizes (also Synapse's defaults). */
export const SPEC_DEFAULT_SIZES: ReadonlyArray<{ width: number; height: number; method: 'crop' | 'scale' }> = [
  { width: 32, height: 32, method: 'crop' },
  { width: 96, height: 96, method: 'crop' },
  { width: 320, height: 240, method: 'scale' },
  { width: 640, height: 480, method: 'scale' },
  { width: 800, height: 600, method: 'scale' },
];
