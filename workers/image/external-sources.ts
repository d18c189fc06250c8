import sharp, { type Sharp } from 'sharp';
import type { ThumbnailLimits } from '../protocol.js';
import { readHeifHeader } from './heif-header.js';
import { readJxlHeader } from './jxl-header.js';
import { decodeHeif, decodeJxl } from './decoders.js';
import { prlimitAvailable, toolAvailable, type Tool } from './external.js';
import { ANIMATION, ffmpegAvailable, videoFrames, videoStill } from './video.js';
import { audioWaveform, coverArt, drawWaveform, onAudioCopy, probeAudio } from './audio.js';
import { sniffType } from './sniff.js';
import { ImageError, checkPixels, type OpenedSource } from './image-error.js';

// Sources that libvips (as sharp ships it) cannot decode: HEVC-coded HEIF, JPEG XL, video and
// audio, each through its external decoder (external.ts). The size is read from the header by
// our own parsers and checked before any decoder runs; the decoders then run lazily, only when
// pixels are wanted (an identify or a media-info request never starts one).

const SHARP_OPTIONS = { failOn: 'warning' as const, sequentialRead: true };

function needTool(tool: Tool, type: string): void {
  if (toolAvailable(tool)) return;
  const missing = prlimitAvailable() ? tool : 'prlimit (util-linux)';
  throw new ImageError('unsupported', `Cannot thumbnail ${type} content: ${missing} is not installed`);
}

function decodeFailure(what: string, e: unknown): ImageError {
  if (e instanceof ImageError) return e;
  const msg = (e as Error).message.replace(/^corrupt: /, '');
  return new ImageError('corrupt', `Could not decode the ${what}: ${msg}`);
}

/** Runs `decode` once, on first use, and keeps its promise (several targets share one decode). */
function once<T>(decode: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () => (p ??= decode());
}

/** A decoded still (orientation already applied by the decoder) as an OpenedSource. */
function decodedStill(
  type: string,
  width: number,
  height: number,
  bytes: number,
  limits: ThumbnailLimits,
  decode: () => Promise<Buffer>,
): OpenedSource {
  const pixels = once(decode);
  const still = async (): Promise<Sharp> =>
    sharp(await pixels(), { ...SHARP_OPTIONS, limitInputPixels: limits.maxPixels });
  return {
    type,
    width,
    height,
    pages: 1,
    orientation: 1,
    bytes,
    derived: true,
    still,
    async animated(size, fit) {
      return { image: (await still()).resize(size.width, size.height, { fit }) };
    },
  };
}

export async function openHeif(source: Buffer, type: string, limits: ThumbnailLimits): Promise<OpenedSource> {
  let h;
  try {
    h = readHeifHeader(source);
  } catch (e) {
    // A sequence with no still item (no meta box): its first frame, through ffmpeg's
    // ISO-BMFF demuxer, as a video's.
    if (type.endsWith('-sequence') && ffmpegAvailable())
      return openStillFrom(source, type, limits, () => videoStill(source, type), 'image sequence');
    throw new ImageError('corrupt', `Could not read the image header: ${(e as Error).message}`);
  }
  needTool('heif-convert', type);
  checkPixels(h.displayWidth, h.displayHeight, limits);
  return decodedStill(type, h.displayWidth, h.displayHeight, source.length, limits, async () => {
    try {
      const stillBrand = type.endsWith('-sequence') ? (h.codec === 'hvc1' ? 'heic' : 'mif1') : undefined;
      return await decodeHeif(source, h.hasAlpha, limits, stillBrand);
    } catch (e) {
      throw decodeFailure('image', e);
    }
  });
}

export function openJxl(source: Buffer, limits: ThumbnailLimits): OpenedSource {
  let h;
  try {
    h = readJxlHeader(source);
  } catch (e) {
    throw new ImageError('corrupt', `Could not read the image header: ${(e as Error).message}`);
  }
  needTool('djxl', 'image/jxl');
  checkPixels(h.displayWidth, h.displayHeight, limits);
  return decodedStill('image/jxl', h.displayWidth, h.displayHeight, source.length, limits, async () => {
    try {
      return await decodeJxl(source, limits);
    } catch (e) {
      throw decodeFailure('image', e);
    }
  });
}

/** A source whose pixels come from one decoded picture (a video frame, a cover): header read now. */
async function openStillFrom(
  source: Buffer,
  type: string,
  limits: ThumbnailLimits,
  decode: () => Promise<Buffer>,
  what: string,
): Promise<OpenedSource> {
  let picture: Buffer;
  try {
    picture = await decode();
  } catch (e) {
    throw decodeFailure(what, e);
  }
  let meta;
  try {
    meta = await sharp(picture, { ...SHARP_OPTIONS, limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError('corrupt', `Could not read the decoded ${what}: ${(e as Error).message}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  checkPixels(width, height, limits);
  return {
    ...decodedStill(type, width, height, source.length, limits, async () => picture),
    orientation: meta.orientation ?? 1,
  };
}

export async function openVideo(source: Buffer, type: string, limits: ThumbnailLimits): Promise<OpenedSource> {
  needTool('ffmpeg', type);
  const still = await openStillFrom(source, type, limits, () => videoStill(source, type), 'video');
  return {
    ...still,
    // An upper bound: the animation is the first seconds, decoded at the output size.
    pages: ANIMATION.maxFrames,
    async animated(size, fit) {
      let got;
      try {
        got = await videoFrames(source, type, size, fit);
      } catch (e) {
        throw decodeFailure('video', e);
      }
      const n = got.frames.length;
      const image = sharp(Buffer.concat(got.frames), {
        raw: { width: size.width, height: size.height * n, channels: 4, ...(n > 1 ? { pageHeight: size.height } : {}) },
      });
      return { image, delay: got.frames.map(() => got.delayMs), loop: 0, frames: n };
    },
  };
}

/** The waveform's natural size: MMR's 768x240 audio bucket, doubled. */
const WAVEFORM_SIZE = { width: 1536, height: 480 };

/**
 * Audio: its cover art when one is attached (and decodable within the limits), else a waveform
 * of the whole file. Facts and waveform come from one copy of the file in one fence directory.
 */
export async function openAudio(source: Buffer, type: string, limits: ThumbnailLimits): Promise<OpenedSource> {
  needTool('ffmpeg', type);
  needTool('ffprobe', type);
  const picture = await onAudioCopy(source, async (file, dir) => {
    const facts = await probeAudio(file, type, dir);
    const cover = facts.hasCover ? await coverArt(file, type, dir) : null;
    if (cover && sniffType(cover)?.startsWith('image/')) {
      const meta = await sharp(cover, { limitInputPixels: false })
        .metadata()
        .catch(() => null);
      if (meta?.width && meta.height && meta.width * meta.height <= limits.maxPixels) return { cover, peaks: [] };
    }
    const { peaks } = await audioWaveform(file, type, dir, facts.headerDurationMs);
    return { cover: null, peaks };
  });
  if (picture.cover) {
    const cover = picture.cover;
    return openStillFrom(source, type, limits, async () => cover, 'cover art');
  }
  const { width, height } = WAVEFORM_SIZE;
  return decodedStill(type, width, height, source.length, limits, async () =>
    sharp(drawWaveform(picture.peaks, width, height), { raw: { width, height, channels: 4 } })
      .png({ compressionLevel: 1 })
      .toBuffer(),
  );
}
