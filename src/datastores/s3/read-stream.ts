import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { ByteRange } from '../datastore.js';
import type { S3Bucket } from './bucket.js';

/** Sends the GetObject (a Range GET when a range is given); the body and the offset it starts at. */
export async function getObject(
  bucket: S3Bucket,
  key: string,
  range: ByteRange | undefined,
  signal?: AbortSignal,
): Promise<{ body: Readable; firstByte: number }> {
  const r = await bucket.run('GetObject', key, (c, b) =>
    c.send(
      new GetObjectCommand({
        Bucket: b,
        Key: key,
        Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      }),
      { abortSignal: signal },
    ),
  );
  if (!(r.Body instanceof Readable))
    throw new Error(`s3 datastore ${bucket.storeId}: GetObject ${key} returned no stream`);
  // A server that ignored the Range answers 200 with the whole object, from byte 0.
  const firstByte = r.ContentRange ? Number(/^bytes (\d+)-/.exec(r.ContentRange)?.[1] ?? NaN) : 0;
  if (!Number.isSafeInteger(firstByte))
    throw new Error(`s3 datastore ${bucket.storeId}: GetObject ${key}: unreadable Content-Range ${r.ContentRange}`);
  return { body: r.Body, firstByte };
}

// A blob (or a byte range of it) as a Readable that exists before its GET does: Datastore's
// openStream is synchronous, so the request is sent when the stream is constructed and a
// failure (missing key, S3 unreachable) arrives as the stream's 'error'. The S3 body is paused
// whenever our reader is, so a slow client holds one socket and no growing buffer.
//
// Exactly the asked bytes come out, whatever the server sends: some ignore or widen a Range
// (s3rver answers bytes=0-0 with the whole object), and extra bytes in a 206 body would
// corrupt the client's file.
export class S3ReadStream extends Readable {
  private body: Readable | null = null;
  private readonly stop = new AbortController();
  /** Bytes still to drop before the range starts, then bytes still to pass on. */
  private skip = 0;
  private remaining = Infinity;

  constructor(
    private readonly bucket: S3Bucket,
    private readonly key: string,
    private readonly range?: ByteRange,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    getObject(this.bucket, this.key, this.range, this.stop.signal).then(
      ({ body, firstByte }) => {
        if (this.destroyed) {
          body.destroy();
          return callback();
        }
        if (this.range) {
          if (firstByte > this.range.start)
            return callback(this.failure(`range starts at ${firstByte}, not ${this.range.start}`));
          this.skip = this.range.start - firstByte;
          this.remaining = this.range.end - this.range.start + 1;
        }
        this.attach(body);
        callback();
      },
      (e: Error) => callback(e),
    );
  }

  private attach(body: Readable): void {
    this.body = body;
    let ended = false;
    const end = () => {
      ended = true;
      this.push(null);
    };
    body.on('data', (chunk: Buffer) => {
      if (ended) return;
      if (this.skip > 0) {
        const dropped = Math.min(this.skip, chunk.length);
        this.skip -= dropped;
        chunk = chunk.subarray(dropped);
      }
      if (chunk.length > this.remaining) chunk = chunk.subarray(0, this.remaining);
      this.remaining -= chunk.length;
      const more = chunk.length === 0 || this.push(chunk);
      if (this.remaining === 0) {
        end();
        body.destroy(); // the rest is bytes we did not ask for
      } else if (!more) body.pause();
    });
    body.once('end', () => {
      if (ended) return;
      if (this.remaining !== Infinity && this.remaining > 0)
        this.destroy(this.failure(`body ended ${this.remaining} bytes before the range did`));
      else end();
    });
    body.once('error', (e) => {
      if (!ended) this.destroy(e);
    });
    // A connection cut mid-body must not look like a complete (short) blob.
    body.once('close', () => {
      if (!ended && !this.destroyed) this.destroy(this.failure('connection closed mid-body'));
    });
    body.pause(); // until the first _read
  }

  private failure(what: string): Error {
    return new Error(`s3 datastore ${this.bucket.storeId}: GetObject ${this.key}: ${what}`);
  }

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stop.abort();
    this.body?.destroy();
    callback(error);
  }
}
