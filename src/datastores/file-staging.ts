import { open, rm, type FileHandle } from 'node:fs/promises';
import type { StagingWriter } from './datastore.js';

// A write-behind file writer: chunks queue in memory up to highWaterMark and go to disk in
// batches (writev), so the socket is paused only when the disk really is slower.
export class FileStagingWriter implements StagingWriter {
  private queue: Buffer[] = [];
  private queued = 0;
  private writing: Promise<void> | null = null;
  private failed: Error | null = null;
  private drainCbs: (() => void)[] = [];
  private closed = false;
  bytesWritten = 0;

  private constructor(readonly path: string, private readonly fh: FileHandle, private readonly highWaterMark: number) {}

  static async create(path: string, highWaterMark = 1 << 20): Promise<FileStagingWriter> {
    const fh = await open(path, 'wx', 0o644);
    return new FileStagingWriter(path, fh, highWaterMark);
  }

  write(chunk: Buffer): boolean {
    if (this.failed) throw this.failed;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.writing) this.writing = this.flushLoop();
    return this.queued < this.highWaterMark;
  }

  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length) {
        const batch = this.queue;
        const size = this.queued;
        this.queue = [];
        this.queued = 0;
        await this.fh.writev(batch);
        this.bytesWritten += size;
        if (this.queued < this.highWaterMark) {
          const cbs = this.drainCbs;
          this.drainCbs = [];
          for (const cb of cbs) cb();
        }
      }
    } catch (e) {
      this.failed = e as Error;
    } finally {
      this.writing = null;
    }
  }

  async finish(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.failed) throw this.failed;
    await this.fh.sync();
    await this.fh.close();
    this.closed = true;
  }

  async abort(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await rm(this.path, { force: true });
  }
}
