import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Video stills through ffmpeg, when it is on PATH. The demuxer is forced from the sniffed
// type and only the file protocol is allowed, so a file cannot make ffmpeg probe its way into
// playlist demuxers that fetch URLs or read other local files.

let available: boolean | undefined;

export function ffmpegAvailable(): boolean {
  if (available === undefined) {
    try {
      available = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore', timeout: 5000 }).status === 0;
    } catch {
      available = false;
    }
  }
  return available;
}

const DEMUXER: Record<string, string> = { 'video/mp4': 'mov', 'video/quicktime': 'mov', 'video/webm': 'matroska' };
const MAX_OUTPUT = 64 * 1024 * 1024;

/** The first video frame as PNG bytes. Throws Error('corrupt: …') when ffmpeg cannot make one. */
export async function videoStill(source: Uint8Array, type: string, timeoutMs = 20_000): Promise<Buffer> {
  const demuxer = DEMUXER[type];
  if (!demuxer) throw new Error(`corrupt: no demuxer for ${type}`);
  // mp4 may keep its index at the end, which a pipe cannot seek to: go through a temp file.
  const file = join(tmpdir(), `media-repo-video-${randomBytes(8).toString('hex')}`);
  await writeFile(file, source, { mode: 0o600 });
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const args = [
        '-hide_banner',
        '-loglevel',
        'error',
        '-nostdin',
        '-protocol_whitelist',
        'file',
        '-f',
        demuxer,
        '-i',
        file,
        '-frames:v',
        '1',
        '-an',
        '-f',
        'image2pipe',
        '-vcodec',
        'png',
        'pipe:1',
      ];
      const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let size = 0;
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdout.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_OUTPUT) child.kill('SIGKILL');
        else chunks.push(c);
      });
      child.stderr.on('data', (c: Buffer) => {
        if (err.length < 2000) err += c.toString();
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`corrupt: ffmpeg failed to start (${e.message})`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0 && size > 0 && size <= MAX_OUTPUT) resolve(Buffer.concat(chunks));
        else
          reject(
            new Error(
              `corrupt: ffmpeg could not extract a frame (${signal ?? `exit ${code}`}${err ? `: ${err.trim().split('\n')[0]}` : ''})`,
            ),
          );
      });
    });
  } finally {
    await unlink(file).catch(() => {});
  }
}
