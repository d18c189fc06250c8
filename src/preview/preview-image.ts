import { safeRequest, type SafeRequestOptions } from '../net/safe-request.js';
import { readPrefix } from './page-reader.js';

// The preview image: fetched through the same address checks as the page (og:image URLs come
// from the page and are attacker-chosen, CVE-2023-32683), capped, and identified from its own
// bytes. Only raster types clients can show are kept; an SVG or a text file claiming to be an
// image is dropped rather than stored.

export interface PreviewImage {
  bytes: Buffer;
  contentType: string;
  width: number;
  height: number;
}

const FORMATS: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp' };

type Sharp = typeof import('sharp')['default'];
let sharpModule: Promise<Sharp> | null = null;
// Loaded on first use: a process that never previews an image never maps libvips on the main
// thread (thumbnails decode on pool threads; this only reads a header).
const loadSharp = (): Promise<Sharp> => (sharpModule ??= import('sharp').then((m) => m.default));

/** Reads type and size from an image's header (libvips on the thread pool); null when it is not
 * a raster image we keep. */
export async function identifyImage(bytes: Buffer): Promise<Omit<PreviewImage, 'bytes'> | null> {
  try {
    const sharp = await loadSharp();
    const m = await sharp(bytes, { failOn: 'none' }).metadata();
    let type = m.format ? FORMATS[m.format] : undefined;
    if (!type && m.format === 'heif' && m.compression === 'av1') type = 'image/avif';
    if (!type || !m.width || !m.height) return null;
    // EXIF orientations 5-8 turn the picture a quarter: report what a viewer shows.
    const turned = (m.orientation ?? 1) >= 5;
    return { contentType: type, width: turned ? m.height : m.width, height: turned ? m.width : m.height };
  } catch {
    return null;
  }
}

/** Null on any failure: a missing image never fails the preview. */
export async function fetchPreviewImage(url: string, opts: Omit<SafeRequestOptions, 'maxBytes'>, maxBytes: number): Promise<PreviewImage | null> {
  let res;
  try {
    res = await safeRequest(url, { ...opts, maxBytes: Number.MAX_SAFE_INTEGER, headers: { ...opts.headers, accept: 'image/*' } });
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
