import type { ThumbnailLimits } from '../protocol.js';
import { placeSource, readOutput, runTool, withWorkDir, type RunLimits } from './external.js';
import { stripExif } from './strip-exif.js';

// HEIF/HEIC and JPEG XL through their reference decoders (libheif's heif-convert with libde265
// for HEVC, libjxl's djxl), fenced as external.ts describes. Sizes were checked from the header
// before either runs; the address-space cap is the second line against a file that lies.

export const DECODE_TIMEOUT_MS = 20_000;
/** Encoded output of one decode (a 16-bit PNG of the largest allowed image fits). */
const MAX_DECODED_BYTES = 512 * 1024 * 1024;

/** Address space for a decoder: its own needs plus room for maxPixels of 16-bit RGBA, capped. */
export function decoderLimits(limits: Pick<ThumbnailLimits, 'maxPixels'>): RunLimits {
  const memoryBytes = Math.min(4 * 1024 ** 3, 384 * 1024 ** 2 + limits.maxPixels * 16);
  return { timeoutMs: DECODE_TIMEOUT_MS, memoryBytes, maxOutputBytes: 64 * 1024 };
}

/**
 * The primary image of a HEIF file, transforms (irot, imir, clap) applied, as JPEG (quality 92:
 * an intermediate for thumbnails, and ten times faster to write than PNG) or, when the image
 * has an alpha plane, PNG. EXIF is removed from the output (see strip-exif.ts).
 */
export function decodeHeif(
  source: Uint8Array,
  alpha: boolean,
  limits: ThumbnailLimits,
  stillBrand?: string,
): Promise<Buffer> {
  return withWorkDir(async (dir) => {
    // libheif 1.15 refuses a file whose major brand names a sequence (msf1, hevc) even when it
    // holds a still primary item: the copy it reads gets a still brand instead.
    const bytes = stillBrand ? withMajorBrand(source, stillBrand) : source;
    const input = await placeSource(dir, 'in.heif', bytes);
    const out = alpha ? 'out.png' : 'out.jpg';
    await runTool('heif-convert', ['--quiet', '-q', '92', input, out], dir, decoderLimits(limits));
    return stripExif(await readOutput(`${dir}/${out}`, MAX_DECODED_BYTES));
  });
}

/** A JPEG XL image as PNG (alpha kept), orientation applied, single-threaded, 8 bits. */
export function decodeJxl(source: Uint8Array, limits: ThumbnailLimits): Promise<Buffer> {
  return withWorkDir(async (dir) => {
    const input = await placeSource(dir, 'in.jxl', source);
    await runTool(
      'djxl',
      [input, 'out.png', '--quiet', '--num_threads=1', '--bits_per_sample=8'],
      dir,
      decoderLimits(limits),
    );
    return stripExif(await readOutput(`${dir}/out.png`, MAX_DECODED_BYTES));
  });
}

/** A copy of an ISO-BMFF file with its ftyp major brand replaced (same length: nothing moves). */
function withMajorBrand(source: Uint8Array, brand: string): Uint8Array {
  const copy = new Uint8Array(source);
  for (let i = 0; i < 4; i++) copy[8 + i] = brand.charCodeAt(i);
  return copy;
}
