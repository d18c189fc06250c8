import { placeSource, runTool, toolAvailable, withWorkDir, type RunLimits } from './external.js';

// Video stills and short animations through ffmpeg (fenced: external.ts). The demuxer is
// forced from the sniffed type and only the file protocol is allowed, so a file cannot make
// ffmpeg probe its way into playlist demuxers that fetch URLs or read other local files.
// ffmpeg runs single-threaded: its threads would each reserve address space under the cap.

export function ffmpegAvailable(): boolean {
  return toolAvailable('ffmpeg');
}

export const DEMUXER: Readonly<Record<string, string>> = {
  'video/mp4': 'mov',
  'video/quicktime': 'mov',
  'video/webm': 'matroska',
  'image/heic-sequence': 'mov',
  'image/heif-sequence': 'mov',
  'audio/mpeg': 'mp3',
  'audio/aac': 'aac',
  'audio/ogg': 'ogg',
  'audio/flac': 'flac',
  'audio/wav': 'wav',
  'audio/mp4': 'mov',
};

const FFMPEG_LIMITS: RunLimits = { timeoutMs: 20_000, memoryBytes: 2 * 1024 ** 3, maxOutputBytes: 64 * 1024 * 1024 };

/** The animated preview of a video: its first seconds, at most this many frames. */
export const ANIMATION = { seconds: 3, fps: 10, maxFrames: 30 } as const;

/** `ffmpeg -i FILE` with the fence's input options: forced demuxer, file protocol only. */
export function inputArgs(type: string, file: string): string[] {
  const demuxer = DEMUXER[type];
  if (!demuxer) throw new Error(`corrupt: no demuxer for ${type}`);
  return ['-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1', '-protocol_whitelist', 'file'].concat([
    '-f',
    demuxer,
    '-i',
    file,
  ]);
}

/** The first video frame as PNG bytes. Throws Error('corrupt: …') when ffmpeg cannot make one. */
export async function videoStill(source: Uint8Array, type: string): Promise<Buffer> {
  return withWorkDir(async (dir) => {
    // mp4 may keep its index at the end, which a pipe cannot seek to: a file in the fence's directory.
    const file = await placeSource(dir, 'in', source);
    const args = [...inputArgs(type, file), '-frames:v', '1', '-an', '-f', 'image2pipe', '-vcodec', 'png', 'pipe:1'];
    let out: Buffer;
    try {
      out = await runTool('ffmpeg', args, dir, FFMPEG_LIMITS);
    } catch (e) {
      throw new Error(`corrupt: ffmpeg could not extract a frame (${(e as Error).message})`);
    }
    if (out.length === 0) throw new Error('corrupt: ffmpeg could not extract a frame (no video stream)');
    return out;
  });
}

/**
 * The first ANIMATION.seconds of a video as raw RGBA frames of exactly width x height (scaled
 * to cover and cropped for 'cover', stretched for 'fill'), ANIMATION.fps at most, ANIMATION.maxFrames at
 * most. A video of a hundred thousand tiny frames costs no more than a short one.
 */
export async function videoFrames(
  source: Uint8Array,
  type: string,
  size: { width: number; height: number },
  fit: 'cover' | 'fill',
): Promise<{ frames: Buffer[]; delayMs: number }> {
  return withWorkDir(async (dir) => {
    const file = await placeSource(dir, 'in', source);
    const { width: w, height: h } = size;
    const scale =
      fit === 'cover' ? `scale=${w}:${h}:force_original_aspect_ratio=increase,crop=${w}:${h}` : `scale=${w}:${h}`;
    const args = [
      ...inputArgs(type, file),
      '-t',
      String(ANIMATION.seconds),
      '-an',
      '-vf',
      `fps=${ANIMATION.fps},${scale},format=rgba`,
      '-frames:v',
      String(ANIMATION.maxFrames),
      '-f',
      'rawvideo',
      'pipe:1',
    ];
    const frameBytes = w * h * 4;
    let out: Buffer;
    try {
      out = await runTool('ffmpeg', args, dir, { ...FFMPEG_LIMITS, maxOutputBytes: frameBytes * ANIMATION.maxFrames });
    } catch (e) {
      throw new Error(`corrupt: ffmpeg could not decode the video (${(e as Error).message})`);
    }
    const frames: Buffer[] = [];
    for (let i = 0; i + frameBytes <= out.length; i += frameBytes) frames.push(out.subarray(i, i + frameBytes));
    if (frames.length === 0) throw new Error('corrupt: ffmpeg decoded no frame');
    return { frames, delayMs: Math.round(1000 / ANIMATION.fps) };
  });
}
