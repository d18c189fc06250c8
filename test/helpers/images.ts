import sharp, { type Sharp } from 'sharp';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { encodeApng } from './apng-encode.js';

// Image fixtures for the thumbnail suites, all made at test time with real encoders (sharp,
// ffmpeg) or small hand-written ones (BMP, a many-frame GIF): nothing binary is committed.
// Every picture is a gradient with a checker pattern so a thumbnail is never trivially uniform,
// and each animation frame differs from the next so encoders cannot merge them.

/** Raw pixels (RGB or RGBA) of frame `frame` of a w x h gradient with an 8px checker. */
export function pattern(w: number, h: number, channels: 3 | 4 = 3, frame = 0): Buffer {
  const buf = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * channels;
      const checker = ((x >> 3) ^ (y >> 3) ^ frame) & 1;
      buf[i] = (Math.floor((x * 255) / Math.max(1, w - 1)) + frame * 47) & 255;
      buf[i + 1] = Math.floor((y * 255) / Math.max(1, h - 1));
      buf[i + 2] = checker ? 220 : 30;
      if (channels === 4) buf[i + 3] = 255;
    }
  }
  return buf;
}

// `variant` shifts the pattern: the same size with another variant is a different file (for
// tests that need an upload no earlier test has thumbnailed).
function still(w: number, h: number, variant: number): Sharp {
  return sharp(pattern(w, h, 3, variant), { raw: { width: w, height: h, channels: 3 } });
}

/** `frames` frames of w x h RGBA stacked vertically (sharp's animated raw layout). */
function strip(w: number, h: number, frames: number, variant: number): Sharp {
  const all = Buffer.concat(Array.from({ length: frames }, (_, f) => pattern(w, h, 4, f + variant)));
  return sharp(all, { raw: { width: w, height: h * frames, channels: 4, pageHeight: h } });
}

export const jpeg = (w: number, h: number, variant = 0): Promise<Buffer> =>
  still(w, h, variant).jpeg({ quality: 85 }).toBuffer();
export const png = (w: number, h: number, variant = 0): Promise<Buffer> => still(w, h, variant).png().toBuffer();
export const webp = (w: number, h: number, variant = 0): Promise<Buffer> =>
  still(w, h, variant).webp({ quality: 80 }).toBuffer();
export const avif = (w: number, h: number, variant = 0): Promise<Buffer> =>
  still(w, h, variant).avif({ quality: 50, effort: 2 }).toBuffer();
export const tiff = (w: number, h: number, variant = 0): Promise<Buffer> =>
  still(w, h, variant).tiff({ compression: 'lzw' }).toBuffer();

/** An animated GIF, looping forever, 100 ms a frame. */
export const gif = (w: number, h: number, frames: number, variant = 0): Promise<Buffer> =>
  strip(w, h, frames, variant)
    .gif({ loop: 0, delay: Array(frames).fill(100), keepDuplicateFrames: true })
    .toBuffer();

/** An animated WebP, looping forever, 100 ms a frame. */
export const animatedWebp = (w: number, h: number, frames: number, variant = 0): Promise<Buffer> =>
  strip(w, h, frames, variant)
    .webp({ loop: 0, delay: Array(frames).fill(100), quality: 80 })
    .toBuffer();

/** An APNG of `frames` full-canvas frames, 100 ms each. */
export function apng(w: number, h: number, frames: number, variant = 0): Buffer {
  return encodeApng(
    Array.from({ length: frames }, (_, f) => ({
      data: pattern(w, h, 4, f + variant),
      width: w,
      height: h,
      delayMs: 100,
    })),
    { width: w, height: h },
  );
}

/** A 24-bit uncompressed bottom-up Windows BMP (sharp cannot write BMP). */
export function bmp(w: number, h: number, variant = 0): Buffer {
  const rgb = pattern(w, h, 3, variant);
  const stride = Math.ceil((w * 3) / 4) * 4;
  const imageSize = stride * h;
  const out = Buffer.alloc(14 + 40 + imageSize);
  // BITMAPFILEHEADER
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(14 + 40, 10);
  // BITMAPINFOHEADER
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(w, 18);
  out.writeInt32LE(h, 22); // positive: rows bottom-up
  out.writeUInt16LE(1, 26); // planes
  out.writeUInt16LE(24, 28); // bits per pixel
  out.writeUInt32LE(0, 30); // BI_RGB
  out.writeUInt32LE(imageSize, 34);
  out.writeInt32LE(2835, 38); // 72 dpi
  out.writeInt32LE(2835, 42);
  for (let y = 0; y < h; y++) {
    const row = 54 + (h - 1 - y) * stride;
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3;
      out[row + x * 3] = rgb[s + 2]!; // BGR
      out[row + x * 3 + 1] = rgb[s + 1]!;
      out[row + x * 3 + 2] = rgb[s]!;
    }
  }
  return out;
}

/** An SVG document of w x h (text). */
export function svg(w: number, h: number): Buffer {
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
      `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
      `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
      `<stop offset="0" stop-color="#d02020"/><stop offset="1" stop-color="#2040e0"/></linearGradient></defs>` +
      `<rect width="${w}" height="${h}" fill="url(#g)"/>` +
      `<circle cx="${w / 2}" cy="${h / 2}" r="${Math.min(w, h) / 3}" fill="#f0e040"/>` +
      `</svg>\n`,
  );
}

/** A w x h JPEG (stored pixels) carrying EXIF Orientation `orientation` (1..8). */
export async function jpegWithOrientation(w: number, h: number, orientation: number, variant = 0): Promise<Buffer> {
  // withExif({IFD0: {Orientation}}) is overwritten by sharp's own orientation tag (1);
  // withMetadata({orientation}) is what writes it.
  return still(w, h, variant).withMetadata({ orientation }).jpeg({ quality: 85 }).toBuffer();
}

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** Whether ffmpeg is on PATH (video fixtures return null without it). */
export const hasFfmpeg = (): boolean => onPath('ffmpeg') !== null;

async function video(w: number, h: number, ext: string, codec: string[]): Promise<Buffer | null> {
  const ffmpeg = onPath('ffmpeg');
  if (!ffmpeg) return null;
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-video-'));
  const file = join(dir, `clip.${ext}`);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        ffmpeg,
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-nostdin',
          '-y',
          '-f',
          'lavfi',
          '-i',
          `testsrc=size=${w}x${h}:rate=10`,
          '-t',
          '1',
          ...codec,
          file,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
    });
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const videoMp4 = (w: number, h: number) =>
  video(w, h, 'mp4', ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart']);
export const videoWebm = (w: number, h: number) =>
  video(w, h, 'webm', ['-c:v', 'libvpx-vp9', '-b:v', '200k', '-deadline', 'realtime']);
export const videoMov = (w: number, h: number) => video(w, h, 'mov', ['-c:v', 'libx264', '-pix_fmt', 'yuv420p']);

// ---- hostile inputs -------------------------------------------------------------------

/** A 16000 x 16000 single-colour PNG: 256 megapixels (768 MB decoded) in well under 1 MB. */
export function pngBomb(): Promise<Buffer> {
  return sharp({
    create: { width: 16000, height: 16000, channels: 3, background: { r: 0, g: 0, b: 0 } },
    limitInputPixels: false,
  })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/**
 * LZW data (minimum code size 2) for a list of 2-colour palette indices, written the
 * "uncompressed" way: a clear code before every literal, so the code size stays 3 bits and
 * no dictionary entry is ever used.
 */
function lzwLiterals(indices: number[]): Buffer {
  const CLEAR = 4;
  const EOI = 5;
  const codes: number[] = [];
  for (const i of indices) codes.push(CLEAR, i);
  codes.push(EOI);
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of codes) {
    acc |= c << bits;
    bits += 3;
    while (bits >= 8) {
      bytes.push(acc & 0xff);
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) bytes.push(acc & 0xff);
  // Sub-blocks of at most 255 bytes, then the block terminator.
  const out: number[] = [2];
  for (let i = 0; i < bytes.length; i += 255) {
    const part = bytes.slice(i, i + 255);
    out.push(part.length, ...part);
  }
  out.push(0);
  return Buffer.from(out);
}

/**
 * A hand-encoded GIF89a of `frames` 4x4 frames (looping, 20 ms each), alternating checker
 * patterns: about 34 bytes a frame, so 10,000 frames are ~340 KB.
 */
export function gifManyFrames(frames: number): Buffer {
  const W = 4;
  const H = 4;
  const parts: Buffer[] = [];
  const header = Buffer.alloc(13);
  header.write('GIF89a', 0, 'latin1');
  header.writeUInt16LE(W, 6);
  header.writeUInt16LE(H, 8);
  header[10] = 0x80; // global colour table, 1 bit colour resolution, 2 entries
  header[11] = 0; // background index
  header[12] = 0; // aspect
  parts.push(header, Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff, 0xff])); // black, white
  // NETSCAPE2.0 application extension: loop forever.
  parts.push(Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0', 'latin1'), 0x03, 0x01, 0x00, 0x00, 0x00]));
  const a = lzwLiterals(Array.from({ length: W * H }, (_, i) => ((i % W) + Math.floor(i / W)) & 1));
  const b = lzwLiterals(Array.from({ length: W * H }, (_, i) => ((i % W) + Math.floor(i / W) + 1) & 1));
  const descriptor = Buffer.from([0x2c, 0, 0, 0, 0, W, 0, H, 0, 0x00]);
  for (let f = 0; f < frames; f++) {
    // Graphic control extension: disposal 1 (leave in place), delay 2 (1/100 s), no transparency.
    parts.push(Buffer.from([0x21, 0xf9, 0x04, 0x04, 0x02, 0x00, 0x00, 0x00]), descriptor, f % 2 ? b : a);
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

/** The first `fraction` (0..1) of a file's bytes. */
export function truncate(buf: Buffer, fraction: number): Buffer {
  return Buffer.from(buf.subarray(0, Math.floor(buf.length * fraction)));
}

/** The first `n` bytes of a file. */
export function head(buf: Buffer, n: number): Buffer {
  return Buffer.from(buf.subarray(0, n));
}

/** A file that looks like PostScript (what ImageMagick-style decoders would hand to Ghostscript). */
export function postscript(): Buffer {
  return Buffer.from(
    [
      '%!PS-Adobe-3.0 EPSF-3.0',
      '%%BoundingBox: 0 0 300 200',
      '%%Creator: media-repo tests',
      '%%EndComments',
      'newpath 10 10 moveto 290 190 lineto stroke',
      '(/etc/passwd) (r) file',
      'showpage',
      '%%EOF',
      '',
    ].join('\n'),
  );
}

export interface Dims {
  width: number;
  /** Height of one page (frame). */
  height: number;
  pages: number;
  format: string;
  orientation?: number;
}

/** Size, frame count and format of an image, via sharp. */
export async function dims(buf: Buffer | Uint8Array): Promise<Dims> {
  const m = await sharp(buf, { animated: true }).metadata();
  return {
    width: m.width,
    height: m.pageHeight ?? m.height,
    pages: m.pages ?? 1,
    format: m.format,
    ...(m.orientation === undefined ? {} : { orientation: m.orientation }),
  };
}
