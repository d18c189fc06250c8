// Output dimensions of a thumbnail (spec "Thumbnails"): never upscale, and never smaller
// than asked unless the source is.

export type Method = 'crop' | 'scale';

export interface Size {
  width: number;
  height: number;
}

/**
 * scale: fit inside the target keeping the aspect ratio (one side may come out smaller).
 * crop: exactly the target when the source covers it; otherwise (it would need upscaling) the
 * largest rectangle of the target's aspect ratio inside the source, unscaled.
 */
export function outputSize(source: Size, target: Size, method: Method): Size {
  const { width: sw, height: sh } = source;
  const { width: tw, height: th } = target;
  if (method === 'scale') {
    const f = Math.min(tw / sw, th / sh, 1);
    return { width: Math.max(1, Math.round(sw * f)), height: Math.max(1, Math.round(sh * f)) };
  }
  if (Math.max(tw / sw, th / sh) <= 1) return { width: tw, height: th };
  if (sw * th > tw * sh) {
    // The source is wider than the target's aspect: full height, trimmed width.
    return { width: Math.max(1, Math.min(sw, Math.round((sh * tw) / th))), height: sh };
  }
  return { width: sw, height: Math.max(1, Math.min(sh, Math.round((sw * th) / tw))) };
}
