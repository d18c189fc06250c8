// Identifies a source by its bytes. The uploaded Content-Type is never trusted to pick a
// decoder (MMR CVE-2024-56515, Synapse CVE-2024-53863): a file claiming to be one thing is
// decoded as what it really is, or refused.

import { heifBrandType } from './heif-header.js';
import { isJxl } from './jxl-header.js';

export type SniffedType =
  | 'image/jpeg'
  | 'image/png'
  | 'image/gif'
  | 'image/webp'
  | 'image/avif'
  | 'image/heif'
  | 'image/heic'
  | 'image/heif-sequence'
  | 'image/heic-sequence'
  | 'image/jxl'
  | 'image/tiff'
  | 'image/bmp'
  | 'image/svg+xml'
  | 'video/mp4'
  | 'video/webm'
  | 'video/quicktime'
  | 'audio/mpeg'
  | 'audio/aac'
  | 'audio/ogg'
  | 'audio/flac'
  | 'audio/wav'
  | 'audio/mp4';

const ascii = (b: Uint8Array, start: number, end: number) => String.fromCharCode(...b.subarray(start, end));

const AUDIO_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);
const MP4_BRANDS = new Set([
  'isom',
  'iso2',
  'iso4',
  'iso5',
  'iso6',
  'mp41',
  'mp42',
  'avc1',
  'M4V ',
  'M4VH',
  'M4VP',
  'dash',
  'mmp4',
  'f4v ',
  '3gp4',
  '3gp5',
  '3g2a',
]);

/** ISO-BMFF (`ftyp` box): AVIF and HEIF images, MP4 and QuickTime video. */
function sniffFtyp(b: Uint8Array): SniffedType | null {
  if (b.length < 16 || ascii(b, 4, 8) !== 'ftyp') return null;
  const boxSize = Math.min(b.length, ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0);
  const brands = [ascii(b, 8, 12)];
  for (let i = 16; i + 4 <= boxSize; i += 4) brands.push(ascii(b, i, i + 4));
  // AVIF and the HEIF family by their most specific brand (heif-header.ts says the rule).
  const heif = heifBrandType(b);
  if (heif) return heif as SniffedType;
  if (AUDIO_BRANDS.has(brands[0]!)) return 'audio/mp4';
  if (brands[0] === 'qt  ') return 'video/quicktime';
  if (brands.some((x) => MP4_BRANDS.has(x))) return 'video/mp4';
  return null;
}

/** MPEG audio frame header: sync, a valid layer, bitrate and sample rate (not JPEG's FF D8). */
function isMpegAudioFrame(b: Uint8Array, i: number): boolean {
  if (i + 4 > b.length || b[i] !== 0xff || (b[i + 1]! & 0xe0) !== 0xe0) return false;
  const version = (b[i + 1]! >> 3) & 3;
  const layer = (b[i + 1]! >> 1) & 3;
  const bitrate = b[i + 2]! >> 4;
  const rate = (b[i + 2]! >> 2) & 3;
  return version !== 1 && layer !== 0 && bitrate !== 15 && rate !== 3;
}

/** ADTS AAC frame header (sync, layer 00). */
const isAdtsFrame = (b: Uint8Array, i: number) => i + 2 <= b.length && b[i] === 0xff && (b[i + 1]! & 0xf6) === 0xf0;

/** MP3 or AAC: a bare frame, or an ID3v2 tag and then the frame it precedes. */
function sniffMpegAudio(b: Uint8Array): SniffedType | null {
  let i = 0;
  if (b.length >= 10 && ascii(b, 0, 3) === 'ID3') {
    // The tag size is four 7-bit bytes; a footer adds 10. A tag longer than what we were given
    // leaves the frame unseen: ID3 is all but always MP3.
    i = 10 + ((b[6]! << 21) | (b[7]! << 14) | (b[8]! << 7) | b[9]!) + (b[5]! & 0x10 ? 10 : 0);
    if (i + 4 > b.length) return 'audio/mpeg';
  }
  if (isAdtsFrame(b, i)) return 'audio/aac';
  if (isMpegAudioFrame(b, i)) return 'audio/mpeg';
  return i > 0 ? 'audio/mpeg' : null;
}

/** BMP has a two-byte magic only, so the header must also look like a real BMP. */
function looksLikeBmp(b: Uint8Array): boolean {
  if (b.length < 26 || b[0] !== 0x42 || b[1] !== 0x4d) return false;
  const dib = b[14]! | (b[15]! << 8) | (b[16]! << 16) | (b[17]! << 24);
  return [12, 40, 52, 56, 64, 108, 124].includes(dib);
}

/** EBML header (Matroska family); only the WebM doctype counts as a video we take. */
function sniffEbml(b: Uint8Array): SniffedType | null {
  if (b.length < 4 || b[0] !== 0x1a || b[1] !== 0x45 || b[2] !== 0xdf || b[3] !== 0xa3) return null;
  return ascii(b, 4, Math.min(b.length, 64)).includes('webm') ? 'video/webm' : null;
}

// An SVG document: optional BOM, XML declaration, comments and doctype, then an <svg> root.
const SVG_START =
  /^\uFEFF?\s*(?:<\?xml[^>]{0,512}\?>\s*)?(?:<!--[\s\S]{0,2048}?-->\s*)*(?:<!DOCTYPE\s+svg[^>]{0,1024}>\s*)?(?:<!--[\s\S]{0,2048}?-->\s*)*<svg[\s>]/i;

function looksLikeSvg(b: Uint8Array): boolean {
  const head = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 4096)).toString('utf8');
  return SVG_START.test(head);
}

/** The type of `b` from its leading bytes, or null when it is none we know. */
export function sniffType(b: Uint8Array): SniffedType | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (isJxl(b)) return 'image/jxl';
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 8) === 'PNG\r\n\x1a\n') return 'image/png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'image/gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'image/webp';
  if (b.length >= 4 && (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*')) return 'image/tiff';
  if (looksLikeBmp(b)) return 'image/bmp';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WAVE') return 'audio/wav';
  if (b.length >= 4 && ascii(b, 0, 4) === 'OggS') return 'audio/ogg';
  if (b.length >= 4 && ascii(b, 0, 4) === 'fLaC') return 'audio/flac';
  const iso = sniffFtyp(b);
  if (iso) return iso;
  // QuickTime files from older cameras may start with a plain atom instead of `ftyp`.
  if (b.length >= 8 && ['moov', 'mdat', 'wide', 'free'].includes(ascii(b, 4, 8))) return 'video/quicktime';
  const ebml = sniffEbml(b);
  if (ebml) return ebml;
  if (looksLikeSvg(b)) return 'image/svg+xml';
  return sniffMpegAudio(b);
}

/**
 * Other names `thumbnails.types` may use for a sniffed type: image/jpg for JPEG; image/heif for
 * the whole HEIF family (what HEIC was sniffed as before, so existing lists keep working) and
 * image/heic for HEVC-coded sequences too; the usual audio aliases.
 */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  'image/jpeg': ['image/jpg'],
  'image/heic': ['image/heif'],
  'image/heic-sequence': ['image/heic', 'image/heif'],
  'image/heif-sequence': ['image/heif'],
  'audio/mpeg': ['audio/mp3'],
  'audio/flac': ['audio/x-flac'],
  'audio/wav': ['audio/wave', 'audio/x-wav', 'audio/vnd.wave'],
  'audio/mp4': ['audio/x-m4a', 'audio/m4a'],
};

/** Whether a sniffed type is allowed by `thumbnails.types` (directly or by an alias above). */
export function typeAllowed(type: string, allowed: readonly string[]): boolean {
  if (allowed.includes(type)) return true;
  return ALIASES[type]?.some((a) => allowed.includes(a)) ?? false;
}

/** Audio types: thumbnailed as their cover art or a waveform (ffmpeg). */
export const isAudioType = (type: string): boolean => type.startsWith('audio/');

/** Width and height from a BMP header (read before any decoder sees the file). */
export function bmpSize(b: Uint8Array): { width: number; height: number } | null {
  if (!looksLikeBmp(b)) return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (view.getUint32(14, true) === 12) return { width: view.getUint16(18, true), height: view.getUint16(20, true) };
  // Height is negative for top-down bitmaps.
  return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
}
