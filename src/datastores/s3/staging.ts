import { createHash } from 'node:crypto';
import type { StagingWriter } from '../datastore.js';
import { ObjectUpload, partBytes } from './object-upload.js';
import type { S3Bucket } from './bucket.js';
import type { LeftoverCleaner } from './leftovers.js';

/** The first part's buffer starts this small and doubles: most uploads are far below 5 MiB. */
const FIRST_BUFFER_BYTES = 256 * 1024;

// An upload streamed straight into a staging object of the bucket, hashed as it passes.
//
// The hash runs here, on the event loop, not on an upload-sink worker like file staging: the
// bytes must stay on this thread to be sent to S3, so a worker would only hash, for a copy into
// its slot and a message round trip per 256 KiB. SHA-256 itself costs 45 µs per 64 KiB chunk
// here (1.3 GB/s with SHA-NI), about 75 ms of event loop per 100 MiB, well below what the S3
// transfer takes (bench/s3-upload.mjs: 100 MiB in about 3 s into s3rver, the loop 55% busy
// including the producer's own copies).
//
// Memory is one part being filled plus at most MAX_PARTS_IN_FLIGHT parts uploading (and one
// part queued behind them while the producer honours the pause): about 20 MiB for a large
// upload, whatever its size, and a few hundred KiB for a small one.
export class S3StagingWriter implements StagingWriter {
  private readonly hash = createHash('sha256');
  private readonly upload: ObjectUpload;
  private written = 0;
  private part: Buffer | null = null;
  private partLen = 0;
  /** Parts cut so far; the one being filled is number partsCut + 1. */
  private partsCut = 0;
  /** Full parts waiting for the upload to take them. */
  private backlog: Buffer[] = [];
  private pumping: Promise<void> | null = null;
  private error: Error | null = null;
  private drainCbs: (() => void)[] = [];
  private state: 'open' | 'finished' | 'aborted' = 'open';
  private result: { sha256: string; size: number } | null = null;

  constructor(
    readonly bucket: S3Bucket,
    readonly key: string,
    private readonly cleaner: LeftoverCleaner,
  ) {
    // Staging objects get the default storage class: classes like STANDARD_IA or GLACIER bill a
    // minimum storage time, and a staging object lives for seconds. The copy to the blob's
    // content address applies the configured class.
    this.upload = new ObjectUpload({ bucket, key, storageClass: '' });
  }

  get bytesWritten(): number {
    return this.written;
  }

  /** Copies the chunk (the caller's buffer is only valid during the call); false asks for a pause. */
  write(chunk: Buffer): boolean {
    if (this.error) throw this.error;
    if (this.state !== 'open') throw new Error('write after the staging object was finished or aborted');
    this.hash.update(chunk);
    this.written += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const want = partBytes(this.partsCut + 1);
      const buf = this.roomFor(want);
      const n = Math.min(buf.length - this.partLen, chunk.length - off);
      chunk.copy(buf, this.partLen, off, off + n);
      this.partLen += n;
      off += n;
      if (this.partLen === want) this.cut();
    }
    return this.pumping === null;
  }

  /** The part buffer with room for at least one more byte, grown up to `want` bytes. */
  private roomFor(want: number): Buffer {
    if (!this.part) {
      this.part = Buffer.allocUnsafe(this.partsCut === 0 ? Math.min(FIRST_BUFFER_BYTES, want) : want);
    } else if (this.partLen === this.part.length) {
      const bigger = Buffer.allocUnsafe(Math.min(want, this.part.length * 2));
      this.part.copy(bigger, 0, 0, this.partLen);
      this.part = bigger;
    }
    return this.part;
  }

  private cut(): void {
    this.backlog.push(this.part!.subarray(0, this.partLen));
    this.part = null;
    this.partLen = 0;
    this.partsCut++;
    if (this.pumping) return;
    this.pumping = this.pump();
  }

  /** Hands queued parts to the upload, one at a time, as it makes room; then wakes the producer. */
  private async pump(): Promise<void> {
    try {
      while (this.backlog.length && !this.error) await this.upload.addPart(this.backlog.shift()!);
    } catch (e) {
      this.error ??= e as Error;
      this.backlog = [];
    } finally {
      this.pumping = null;
      const cbs = this.drainCbs;
      this.drainCbs = [];
      for (const cb of cbs) cb();
    }
  }

  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  async finish(): Promise<{ sha256: string; size: number }> {
    if (this.result) return this.result;
    if (this.state !== 'open') throw new Error('finish after the staging object was aborted');
    while (this.pumping) await this.pumping;
    if (this.error) throw this.error;
    const last = this.part ? this.part.subarray(0, this.partLen) : Buffer.alloc(0);
    this.part = null;
    await this.upload.finish(last);
    this.state = 'finished';
    this.result = { sha256: this.hash.digest('hex'), size: this.written };
    return this.result;
  }

  /** Stops the upload and removes what it stored; never throws (removal is retried later). */
  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    this.state = 'aborted';
    this.backlog = [];
    this.part = null;
    this.error ??= new Error('staging object aborted');
    await this.upload.abort(this.cleaner);
  }
}
