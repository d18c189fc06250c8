import { safeRequest, type SafeRequestOptions } from '../net/safe-request.js';
import { readPrefix } from './page-reader.js';

// The preview image: fetched through the same address checks as the page (og:image URLs come
// from the page and are attacker-chosen, CVE-2023-32683), capped, and identified from its own
// bytes (sniffed, never from the Content-Type). Only raster types clients can show are kept; an
// SVG or a text file claiming to be an image is dropped rather than stored.

export interface PreviewImage {
  bytes: Buffer;
  contentType: string;
  width: number;
  height: number;
}

/** Reads an image's type and displayed size (on the image pool: native decoders stay off the
 * main thread); null when it is not an image a preview may carry. */
export type IdentifyImage = (bytes: Buffer) => Promise<Omit<PreviewImage, 'bytes'> | null>;

/** Null on any failure: a missing image never fails the preview. */
export async function fetchPreviewImage(
  url: string,
  opts: Omit<SafeRequestOptions, 'maxBytes'>,
  maxBytes: number,
  identifyImage: IdentifyImage,
): Promise<PreviewImage | null> {
  let res;
  try {
    res = await safeRequest(url, {
      ...opts,
      maxBytes: Number.MAX_SAFE_INTEGER,
      headers: { ...opts.headers, accept: 'image/*' },
    });
  } catch {
    return null;
  }
  if (res.status < 200 || res.status >= 300 || Number(res.headers['content-length']) > maxBytes) {
    res.body.destroy();
    return null;
  }
  try {
    const { bytes, complete } = await readPrefix(res.body, maxBytes + 1);
    if (!complete || bytes.length > maxBytes || bytes.length === 0) return null;
    const info = await identifyImage(bytes);
    return info && { bytes, ...info };
  } catch {
    return null;
  }
}
