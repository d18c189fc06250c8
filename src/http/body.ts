import type { HttpResponse } from 'uWebSockets.js';
import type { BodySource } from './types.js';

/** Chunks queued before the consumer starts (auth runs first); past this the socket pauses. */
const EARLY_BUFFER_BYTES = 256 * 1024;

// uWS delivers body chunks only to an onData registered synchronously in the request
// handler, and each ArrayBuffer is valid only during the callback. This source registers
// at once, copies every chunk, and turns pause/resume into socket-level backpressure, so
// memory per upload is bounded by the early buffer plus the consumer's own queue.
export class UwsBodySource implements BodySource {
  private early: Buffer[] = [];
  private earlyBytes = 0;
  private ended = false;
  private handlers: Parameters<BodySource['start']>[0] | null = null;
  private paused = false;
  private failed: Error | null = null;
  complete = false;

  constructor(
    private readonly res: HttpResponse,
    readonly contentLength: number | null,
    private readonly isGone: () => boolean,
  ) {
    res.onData((ab, isLast) => {
      if (this.handlers) {
        // A view, no copy: the consumer copies what it keeps (the upload sink copies straight
        // into one of its transfer buffers), because uWS reuses this memory after the call.
        if (ab.byteLength) this.handlers.onChunk(Buffer.from(ab));
        if (isLast) this.finish();
      } else {
        if (ab.byteLength) {
          this.early.push(Buffer.from(ab.slice(0))); // kept until the consumer starts: copy
          this.earlyBytes += ab.byteLength;
        }
        if (isLast) this.ended = true;
        else if (this.earlyBytes >= EARLY_BUFFER_BYTES) this.pause();
      }
    });
  }

  /** Called by the server when the client aborts. */
  abort(): void {
    this.failed = new Error('client closed the connection');
    this.handlers?.onError(this.failed);
  }

  start(h: Parameters<BodySource['start']>[0]): void {
    if (this.handlers) throw new Error('body already consumed');
    this.handlers = h;
    if (this.failed) {
      h.onError(this.failed);
      return;
    }
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const c of early) h.onChunk(c);
    if (this.ended) this.finish();
    else if (this.paused) this.resume();
  }

  private finish(): void {
    this.complete = true;
    this.handlers?.onEnd();
  }

  pause(): void {
    if (this.paused || this.isGone() || this.complete) return;
    this.paused = true;
    this.res.pause();
  }

  resume(): void {
    if (!this.paused || this.isGone()) return;
    this.paused = false;
    this.res.resume();
  }
}

/** Reads a small body (JSON for /create, logout) into memory, refusing more than `limit`. */
export function readSmallBody(body: BodySource, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    let done = false;
    body.start({
      onChunk(c) {
        if (done) return;
        n += c.length;
        if (n > limit) {
          done = true;
          reject(new Error(`body larger than ${limit} bytes`));
          return;
        }
        parts.push(Buffer.from(c)); // chunks are only valid during the call
      },
      onEnd() {
        if (!done) resolve(Buffer.concat(parts));
        done = true;
      },
      onError(e) {
        if (!done) reject(e);
        done = true;
      },
    });
  });
}
