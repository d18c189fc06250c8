import type { ThumbnailLimits } from '../protocol.js';
import { audioWaveform, onAudioCopy, probeAudio } from './audio.js';
import { toolAvailable } from './external.js';
import { ImageError } from './image-error.js';
import { isAudioType, sniffType, typeAllowed } from './sniff.js';

// MMR's audio fields of the media info: duration, channels, total samples and 768 waveform
// peaks (key_samples), from one fenced run of ffprobe and one of ffmpeg over a copy of the file.

export async function audioFacts(source: Buffer, limits: ThumbnailLimits) {
  const type = sniffType(source);
  if (!type || !isAudioType(type)) throw new ImageError('unsupported', 'Not an audio file we recognise');
  if (!typeAllowed(type, limits.types))
    throw new ImageError('unsupported', `Cannot read ${type} content (not in thumbnails.types)`);
  if (!toolAvailable('ffprobe') || !toolAvailable('ffmpeg'))
    throw new ImageError('unsupported', `Cannot read ${type} content: ffmpeg is not installed`);
  return onAudioCopy(source, async (file, dir) => {
    const facts = await probeAudio(file, type, dir);
    const wave = await audioWaveform(file, type, dir, facts.headerDurationMs);
    return {
      type,
      durationMs: wave.durationMs,
      channels: facts.channels,
      sampleRate: facts.sampleRate,
      totalSamples: Math.round((wave.durationMs / 1000) * facts.sampleRate),
      keySamples: wave.peaks,
    };
  });
}
