import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type StorageClass,
} from '@aws-sdk/client-s3';
import type { S3Bucket } from './bucket.js';
import type { Leftover, LeftoverCleaner } from './leftovers.js';

/** S3's smallest part (every part but the last must be at least this). */
const MIN_PART_BYTES = 5 * 1024 * 1024;
/** Parts uploading at once per object: enough to keep a connection busy while the next part
 * fills, few enough that an upload's memory stays a few parts whatever its size. */
export const MAX_PARTS_IN_FLIGHT = 2;

/**
 * Size of part `n` (from 1): 5 MiB, growing by 5 MiB every 2000 parts. Small parts keep memory
 * low for the usual upload; the growth lets an upload of unknown length pass S3's 10,000-part
 * limit anyway (up to about 146 GiB).
 */
export function partBytes(n: number): number {
  return MIN_PART_BYTES * (1 + Math.floor((n - 1) / 2000));
}

export interface ObjectTarget {
  bucket: S3Bucket;
  key: string;
  /** Empty: the service's default (and no header, for services that reject the header). */
  storageClass: string;
}

// Writes one object from parts handed over in order. The first part is held back until a
// second one arrives: an object that fits in one part (nearly every upload) is one PutObject
// and never a multipart upload. Larger objects become a multipart upload with at most
// MAX_PARTS_IN_FLIGHT parts uploading; addPart() waits for room, which is how a fast producer
// is slowed to S3's pace.
export class ObjectUpload {
  private held: Buffer | null = null;
  private handed = 0;
  private uploadId: Promise<string> | null = null;
  private createdId: string | null = null;
  private readonly running = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  private failure: Error | null = null;
  /** A PutObject or CompleteMultipartUpload was sent: the object may exist. */
  private objectSent = false;
  private readonly stop = new AbortController();

  constructor(private readonly target: ObjectTarget) {}

  /** The number the next part handed over will get (it should be partBytes(that) long). */
  get nextPartNumber(): number {
    return this.handed + 1;
  }

  /** Hands over a full part; resolves once there is room for the next one. */
  async addPart(bytes: Buffer): Promise<void> {
    this.throwIfFailed();
    const n = ++this.handed;
    if (n === 1) {
      this.held = bytes;
      return;
    }
    this.startMultipart();
    this.startPart(n, bytes);
    while (this.running.size >= MAX_PARTS_IN_FLIGHT) await Promise.race(this.running);
    this.throwIfFailed();
  }

  /** Sends the last (possibly empty, possibly short) part and makes the object whole. */
  async finish(last: Buffer): Promise<void> {
    this.throwIfFailed();
    if (!this.uploadId && !(this.held && last.length > 0)) {
      const body = this.held ?? last;
      this.held = null;
      this.objectSent = true;
      await this.target.bucket.run('PutObject', this.target.key, (c, b) =>
        c.send(
          new PutObjectCommand({
            Bucket: b,
            Key: this.target.key,
            Body: body,
            ContentLength: body.length,
            StorageClass: this.storageClass(),
          }),
          { abortSignal: this.stop.signal },
        ),
      );
      return;
    }
    this.startMultipart();
    if (last.length > 0) this.startPart(++this.handed, last);
    await Promise.all(this.running);
    this.throwIfFailed();
    const uploadId = await this.uploadId!;
    this.objectSent = true;
    await this.target.bucket.run('CompleteMultipartUpload', this.target.key, (c, b) =>
      c.send(
        new CompleteMultipartUploadCommand({
          Bucket: b,
          Key: this.target.key,
          UploadId: uploadId,
          MultipartUpload: { Parts: [...this.parts].sort((x, y) => x.PartNumber! - y.PartNumber!) },
        }),
        { abortSignal: this.stop.signal },
      ),
    );
  }

  /** Stops the upload and removes whatever it stored (through the cleaner, which retries). */
  async abort(cleaner: LeftoverCleaner): Promise<void> {
    this.stop.abort();
    this.held = null;
    await Promise.all(this.running);
    if (this.uploadId) await this.uploadId.catch(() => null);
    for (const l of this.leftovers()) await cleaner.remove(l);
  }

  private leftovers(): Leftover[] {
    const out: Leftover[] = [];
    if (this.createdId) out.push({ key: this.target.key, uploadId: this.createdId });
    if (this.objectSent) out.push({ key: this.target.key });
    return out;
  }

  private startMultipart(): void {
    if (this.uploadId) return;
    this.uploadId = this.target.bucket
      .run('CreateMultipartUpload', this.target.key, (c, b) =>
        c.send(
          new CreateMultipartUploadCommand({
            Bucket: b,
            Key: this.target.key,
            StorageClass: this.storageClass(),
          }),
          { abortSignal: this.stop.signal },
        ),
      )
      .then((r) => {
        if (!r.UploadId)
          throw new Error(`s3 datastore ${this.target.bucket.storeId}: CreateMultipartUpload returned no UploadId`);
        this.createdId = r.UploadId;
        return r.UploadId;
      });
    // Failures surface through the parts and finish(); this only keeps the rejection handled.
    this.uploadId.catch((e: Error) => this.fail(e));
    if (this.held) {
      this.startPart(1, this.held);
      this.held = null;
    }
  }

  private startPart(n: number, body: Buffer): void {
    const p: Promise<void> = (async () => {
      const uploadId = await this.uploadId!;
      const r = await this.target.bucket.run('UploadPart', this.target.key, (c, b) =>
        c.send(
          new UploadPartCommand({
            Bucket: b,
            Key: this.target.key,
            UploadId: uploadId,
            PartNumber: n,
            Body: body,
            ContentLength: body.length,
          }),
          { abortSignal: this.stop.signal },
        ),
      );
      this.parts.push({ PartNumber: n, ETag: r.ETag });
    })()
      .catch((e: Error) => this.fail(e))
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** The first failure wins; the other parts in flight are cancelled, their errors are noise. */
  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.stop.abort();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Undefined sends no header: the service's default, for services that reject the header. */
  private storageClass(): StorageClass | undefined {
    return (this.target.storageClass || undefined) as StorageClass | undefined;
  }
}
