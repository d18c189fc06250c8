// Identifies a source by its bytes. The uploaded Content-Type is never trusted to pick a
// decoder (MMR CVE-2024-56515, Synapse CVE-2024-53863): a file claiming to be one thing is
// decoded as what it really is, or refused.

export type SniffedType =
  | 'image/jpeg'
  | 'image/png'
  | 'image/gif'
  | 'image/webp'
  | 'image/avif'
  | 'image/heif'
  | 'image/tiff'
  | 'image/bmp'
  | 'image/svg+xml'
  | 'video/mp4'
  | 'video/webm'
  | 'video/quicktime';

const ascii = (b: Uint8Array, start: number, end: number) => String.fromCharCode(...b.subarray(start, end));

const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1']);
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
  if (brands.includes('avif') || brands.includes('avis')) return 'image/avif';
  if (brands.some((x) => HEIF_BRANDS.has(x))) return 'image/heif';
  if (brands[0] === 'qt  ') return 'video/quicktime';
  if (brands.some((x) => MP4_BRANDS.has(x))) return 'video/mp4';
  return null;
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
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 8) === 'PNG\r\n\x1a\n') return 'image/png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'image/gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'image/webp';
  if (b.length >= 4 && (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*')) return 'image/tiff';
  if (looksLikeBmp(b)) return 'image/bmp';
  const iso = sniffFtyp(b);
  if (iso) return iso;
  // QuickTime files from older cameras may start with a plain atom instead of `ftyp`.
  if (b.length >= 8 && ['moov', 'mdat', 'wide', 'free'].includes(ascii(b, 4, 8))) return 'video/quicktime';
  const ebml = sniffEbml(b);
  if (ebml) return ebml;
  if (looksLikeSvg(b)) return 'image/svg+xml';
  return null;
}

/** Whether a sniffed type is allowed by `thumbnails.types` (image/jpg is an alias of image/jpeg). */
export function typeAllowed(type: string, allowed: readonly string[]): boolean {
  if (allowed.includes(type)) return true;
  return type === 'image/jpeg' && allowed.includes('image/jpg');
}

/** Width and height from a BMP header (read before any decoder sees the file). */
export function bmpSize(b: Uint8Array): { width: number; height: number } | null {
  if (!looksLikeBmp(b)) return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (view.getUint32(14, true) === 12) return { width: view.getUint16(18, true), height: view.getUint16(20, true) };
  // Height is negative for top-down bitmaps.
  return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
}
