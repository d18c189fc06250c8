import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';

// Real HEIC, JPEG XL, audio and video files, made by the tools that make them in the wild
// (libheif's heif-enc with x265, libjxl's cjxl, ffmpeg), for the format tests. Nothing is
// downloaded. Each generator works in a temp directory of its own.

/** Whether a program is installed (answers its version or help flag). */
export function installed(tool: string): boolean {
  try {
    execFileSync(tool, tool === 'heif-enc' ? ['--version'] : tool === 'cjxl' ? ['--version'] : ['-version'], {
      stdio: 'ignore',
    });
    return true;
  } catch (e) {
    // heif-enc answers --version with exit 1 on libheif 1.15 but is there.
    return (e as { code?: string }).code !== 'ENOENT' && (e as { status?: number }).status !== 127;
  }
}

function inTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'media-files-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const BLUE = { r: 0, g: 0, b: 255 };
const WHITE = { r: 255, g: 255, b: 255 };

/**
 * A w x h picture, white with a blue block in its top-left corner (a quarter of the height
 * square): where that block lands in a thumbnail shows how the picture was turned.
 */
export async function cornerImage(w: number, h: number): Promise<Sharp> {
  const s = Math.floor(h / 2);
  const block = await sharp({ create: { width: s, height: s, channels: 3, background: BLUE } })
    .png()
    .toBuffer();
  return sharp({ create: { width: w, height: h, channels: 3, background: WHITE } }).composite([
    { input: block, left: 0, top: 0 },
  ]);
}

/** heif-enc of a PNG or JPEG (a JPEG's EXIF, orientation included, is carried into the HEIC). */
export function heicOf(input: Buffer, ext: 'png' | 'jpg'): Buffer {
  return inTemp((dir) => {
    writeFileSync(join(dir, `in.${ext}`), input);
    execFileSync('heif-enc', ['-q', '80', join(dir, `in.${ext}`), '-o', join(dir, 'out.heic')], { stdio: 'ignore' });
    return readFileSync(join(dir, 'out.heic'));
  });
}

/** heif-enc's AV1 encoder (an AVIF file); see withBrands to make it a plain HEIF. */
export function av1HeifOf(png: Buffer): Buffer {
  return inTemp((dir) => {
    writeFileSync(join(dir, 'in.png'), png);
    execFileSync('heif-enc', ['-A', '-q', '60', join(dir, 'in.png'), '-o', join(dir, 'out.heif')], { stdio: 'ignore' });
    return readFileSync(join(dir, 'out.heif'));
  });
}

/** The same file with its ftyp brands replaced (same count, so no offset moves). */
export function withBrands(file: Buffer, major: string, compatible: string[]): Buffer {
  const out = Buffer.from(file);
  const size = out.readUInt32BE(0);
  const slots = (size - 16) / 4;
  if (out.toString('latin1', 4, 8) !== 'ftyp' || compatible.length > slots) throw new Error('cannot rebrand');
  out.write(major, 8, 'latin1');
  for (let i = 0; i < slots; i++) out.write(compatible[i] ?? compatible[0]!, 16 + 4 * i, 'latin1');
  return out;
}

/** An HEVC (x265) track in an ISO-BMFF file: an image sequence once rebranded msf1/hevc. */
export function hevcTrack(w: number, h: number, frames: number): Buffer {
  return inTemp((dir) => {
    execFileSync(
      'ffmpeg',
      [...FFMPEG, '-f', 'lavfi', '-i', `testsrc=size=${w}x${h}:rate=10`, '-frames:v', String(frames)].concat(
        ['-c:v', 'libx265', '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p', '-tag:v', 'hvc1'],
        ['-movflags', '+faststart', '-f', 'mp4', join(dir, 'out.mp4')],
      ),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return readFileSync(join(dir, 'out.mp4'));
  });
}

/** cjxl of a PNG, or a lossless recompression of a JPEG (its EXIF orientation goes into the header). */
export function jxlOf(input: Buffer, ext: 'png' | 'jpg'): Buffer {
  return inTemp((dir) => {
    writeFileSync(join(dir, `in.${ext}`), input);
    execFileSync('cjxl', [join(dir, `in.${ext}`), join(dir, 'out.jxl'), '--quiet'], { stdio: 'ignore' });
    return readFileSync(join(dir, 'out.jxl'));
  });
}

const FFMPEG = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y'];

/** `seconds` of a 440 Hz tone (stereo, 44.1 kHz) in the container and codec of `ext`, optionally with a cover. */
export function audioFile(ext: 'mp3' | 'ogg' | 'flac' | 'm4a' | 'wav', seconds: number, cover?: Buffer): Buffer {
  return inTemp((dir) => {
    const codec: Record<typeof ext, string[]> = {
      mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'],
      ogg: ['-c:a', 'libopus', '-b:a', '48k'],
      flac: ['-c:a', 'flac'],
      m4a: ['-c:a', 'aac', '-b:a', '64k'],
      wav: ['-c:a', 'pcm_s16le'],
    };
    const args = [...FFMPEG, '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}:sample_rate=44100`];
    if (cover) {
      writeFileSync(join(dir, 'cover.png'), cover);
      args.push(
        '-i',
        join(dir, 'cover.png'),
        '-map',
        '0:a',
        '-map',
        '1:v',
        '-c:v',
        'png',
        '-disposition:v',
        'attached_pic',
      );
      if (ext === 'mp3') args.push('-id3v2_version', '3');
    }
    args.push('-ac', '2', ...codec[ext], join(dir, `out.${ext}`));
    execFileSync('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return readFileSync(join(dir, `out.${ext}`));
  });
}

/**
 * An H.264 mp4 of `seconds` at `fps` frames per second, w x h: ffmpeg's test pattern, or a plain
 * colour (`flat`: a hundred thousand frames of it encode in well under a second).
 */
export function videoFile(w: number, h: number, seconds: number, fps: number, flat = false): Buffer {
  return inTemp((dir) => {
    execFileSync(
      'ffmpeg',
      [
        ...FFMPEG,
        '-f',
        'lavfi',
        '-i',
        flat ? `color=c=red:size=${w}x${h}:rate=${fps}` : `testsrc=size=${w}x${h}:rate=${fps}`,
        '-t',
        String(seconds),
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-pix_fmt',
        'yuv420p',
        '-movflags',
        '+faststart',
        join(dir, 'out.mp4'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return readFileSync(join(dir, 'out.mp4'));
  });
}

/** Where the blue block is in a decoded picture: which half vertically and horizontally. */
export async function blueCorner(image: Buffer): Promise<{ top: boolean; left: boolean }> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let y = 0; y < info.height; y++)
    for (let x = 0; x < info.width; x++) {
      const i = (y * info.width + x) * 3;
      if (data[i + 2]! > 180 && data[i]! < 80 && data[i + 1]! < 80) {
        sx += x;
        sy += y;
        n++;
      }
    }
  if (n === 0) throw new Error('no blue block in the picture');
  return { top: sy / n < info.height / 2, left: sx / n < info.width / 2 };
}
