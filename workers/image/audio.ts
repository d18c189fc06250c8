import { DecoderError, placeSource, runTool, withWorkDir, type RunLimits } from './external.js';
import { ImageError } from './image-error.js';
import { DEMUXER, inputArgs } from './video.js';

// Audio through ffprobe and ffmpeg (fenced: external.ts), on a copy of the file already placed
// in the fence's directory: the stream facts, the embedded cover art, and a waveform of
// WAVEFORM_SAMPLES peaks (MMR's key_samples) from the whole file decoded at 8 kHz mono.
// The waveform is built in constant memory whatever the length, and the header's duration is
// only a first guess: a file that lies about its length gets the waveform of what it holds.

export const WAVEFORM_SAMPLES = 768;
const RATE = 8000;
/** Decoding stops here (the waveform then covers these first hours). */
const MAX_SECONDS = 4 * 3600;
/** A cover larger than this is not used (the waveform is drawn instead). */
export const MAX_COVER_BYTES = 16 * 1024 * 1024;

const PROBE_LIMITS: RunLimits = { timeoutMs: 10_000, memoryBytes: 1024 ** 3, maxOutputBytes: 1024 * 1024 };
const DECODE_LIMITS: RunLimits = { timeoutMs: 30_000, memoryBytes: 1024 ** 3, maxOutputBytes: MAX_SECONDS * RATE * 2 };

/**
 * Runs `fn` on a copy of the audio file in a fence directory of its own (one copy for every
 * ffprobe and ffmpeg run on it); a decoder's failure comes out as the audio's ImageError.
 */
export function onAudioCopy<T>(source: Uint8Array, fn: (file: string, dir: string) => Promise<T>): Promise<T> {
  return withWorkDir(async (dir) => {
    const file = await placeSource(dir, 'in', source);
    try {
      return await fn(file, dir);
    } catch (e) {
      if (e instanceof DecoderError) throw new ImageError('corrupt', `Could not decode the audio: ${e.message}`);
      throw e;
    }
  });
}

export interface AudioFacts {
  channels: number;
  sampleRate: number;
  /** From the container's header; null when it states none. */
  headerDurationMs: number | null;
  /** Whether a cover picture is attached (an attached_pic video stream). */
  hasCover: boolean;
}

const demuxer = (type: string) => {
  const d = DEMUXER[type];
  if (!d) throw new DecoderError(`no demuxer for ${type}`, 'failed');
  return d;
};

interface ProbeStream {
  codec_type?: string;
  channels?: number;
  sample_rate?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
}

export async function probeAudio(file: string, type: string, dir: string): Promise<AudioFacts> {
  const out = await runTool(
    'ffprobe',
    ['-v', 'error', '-protocol_whitelist', 'file', '-f', demuxer(type), '-print_format', 'json'].concat([
      '-show_streams',
      '-show_format',
      file,
    ]),
    dir,
    PROBE_LIMITS,
  );
  let parsed: { streams?: ProbeStream[]; format?: { duration?: string } };
  try {
    parsed = JSON.parse(out.toString('utf8')) as typeof parsed;
  } catch {
    throw new DecoderError('ffprobe gave no readable answer', 'failed');
  }
  const audio = parsed.streams?.find((s) => s.codec_type === 'audio');
  if (!audio) throw new DecoderError('no audio stream', 'failed');
  const seconds = Number(audio.duration ?? parsed.format?.duration);
  return {
    channels: audio.channels ?? 0,
    sampleRate: Number(audio.sample_rate) || 0,
    headerDurationMs: Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : null,
    hasCover: parsed.streams?.some((s) => s.codec_type === 'video' && s.disposition?.attached_pic === 1) ?? false,
  };
}

/** The attached cover picture's bytes as stored (JPEG or PNG, not re-encoded), or null. */
export async function coverArt(file: string, type: string, dir: string): Promise<Buffer | null> {
  const args = [
    ...inputArgs(type, file),
    '-map',
    '0:v:0',
    '-frames:v',
    '1',
    '-c',
    'copy',
    '-f',
    'image2pipe',
    'pipe:1',
  ];
  try {
    const out = await runTool('ffmpeg', args, dir, { ...PROBE_LIMITS, maxOutputBytes: MAX_COVER_BYTES });
    return out.length > 0 ? out : null;
  } catch (e) {
    if (e instanceof DecoderError && e.reason === 'output') return null; // too big: the waveform instead
    throw e;
  }
}

/**
 * Peaks of the absolute sample value, WAVEFORM_SAMPLES of them over the whole decoded length,
 * in constant memory: samples are folded into buckets of `per` samples, and when the buckets
 * reach twice the target, neighbours are merged and `per` doubles.
 */
export class PeakFolder {
  private buckets: number[] = [];
  private cur = 0;
  private inCur = 0;
  private carry: number | null = null;
  total = 0;

  constructor(private per: number) {
    this.per = Math.max(1, Math.floor(per));
  }

  /** Signed 16-bit little-endian mono PCM, any chunking (an odd byte waits for the next chunk). */
  push(chunk: Buffer): void {
    let i = 0;
    if (this.carry !== null && chunk.length > 0) {
      this.add(Math.abs((((chunk[0]! << 8) | this.carry) << 16) >> 16));
      this.carry = null;
      i = 1;
    }
    for (; i + 1 < chunk.length; i += 2) this.add(Math.abs(chunk.readInt16LE(i)));
    if (i < chunk.length) this.carry = chunk[i]!;
  }

  private add(v: number): void {
    this.total++;
    if (v > this.cur) this.cur = v;
    if (++this.inCur < this.per) return;
    this.buckets.push(this.cur);
    this.cur = 0;
    this.inCur = 0;
    if (this.buckets.length >= 2 * WAVEFORM_SAMPLES) {
      const merged: number[] = [];
      for (let k = 0; k < this.buckets.length; k += 2)
        merged.push(Math.max(this.buckets[k]!, this.buckets[k + 1] ?? 0));
      this.buckets = merged;
      this.per *= 2;
    }
  }

  /** Exactly WAVEFORM_SAMPLES values in 0..1 (zeros for silence or no audio). */
  peaks(): number[] {
    const all = this.inCur > 0 ? [...this.buckets, this.cur] : this.buckets;
    const out: number[] = [];
    for (let k = 0; k < WAVEFORM_SAMPLES; k++) {
      if (all.length === 0) {
        out.push(0);
        continue;
      }
      const from = Math.floor((k * all.length) / WAVEFORM_SAMPLES);
      const to = Math.max(from + 1, Math.floor(((k + 1) * all.length) / WAVEFORM_SAMPLES));
      let m = 0;
      for (let j = from; j < to && j < all.length; j++) m = Math.max(m, all[j]!);
      out.push(Math.round((m / 32768) * 1000) / 1000);
    }
    return out;
  }
}

/** The waveform and the decoded length (the truth, whatever the header said). */
export async function audioWaveform(
  file: string,
  type: string,
  dir: string,
  headerDurationMs: number | null,
): Promise<{ peaks: number[]; durationMs: number }> {
  const expected = ((headerDurationMs ?? 60_000) / 1000) * RATE;
  const folder = new PeakFolder(expected / WAVEFORM_SAMPLES);
  const args = [...inputArgs(type, file), '-t', String(MAX_SECONDS), '-map', '0:a:0', '-vn', '-ac', '1'].concat([
    '-ar',
    String(RATE),
    '-f',
    's16le',
    'pipe:1',
  ]);
  await runTool('ffmpeg', args, dir, DECODE_LIMITS, (c) => folder.push(c));
  return { peaks: folder.peaks(), durationMs: Math.round((folder.total / RATE) * 1000) };
}

/** A waveform image: raw RGBA, one column per pixel, peaks mirrored about the middle. */
export function drawWaveform(peaks: readonly number[], width: number, height: number): Buffer {
  const px = Buffer.alloc(width * height * 4);
  const bg = [30, 42, 58, 255];
  const fg = [158, 203, 255, 255];
  for (let x = 0; x < width; x++) {
    const from = Math.floor((x * peaks.length) / width);
    const to = Math.max(from + 1, Math.floor(((x + 1) * peaks.length) / width));
    let p = 0;
    for (let j = from; j < to; j++) p = Math.max(p, peaks[j] ?? 0);
    const half = Math.max(0.5, (p * height * 0.9) / 2);
    for (let y = 0; y < height; y++) {
      const c = Math.abs(y + 0.5 - height / 2) <= half ? fg : bg;
      px.set(c, (y * width + x) * 4);
    }
  }
  return px;
}
