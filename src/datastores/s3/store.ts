import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type StorageClass } from '@aws-sdk/client-s3';
import type { DatastoreKind, S3DatastoreOpts } from '../../config/schema.js';
import type { ByteRange, Datastore, StagingWriter } from '../datastore.js';
import { createS3Client } from './client.js';
import { isNotFound, S3Bucket } from './bucket.js';
import { contentKey, locationOfObjectUrl, newStagingKey, objectUrlFor, publicUrlFor, STAGING_PREFIX } from './keys.js';
import { LeftoverCleaner, removeLeftover } from './leftovers.js';
import { S3StagingWriter } from './staging.js';
import { uploadFile } from './spool.js';
import { FileStagingWriter } from '../file-staging.js';
import { getObject, S3ReadStream } from './read-stream.js';
import { copyObject } from './copy.js';
import { sweepBucketStaging } from './sweep.js';
import { checkedLocation } from '../location.js';
import { stagingName, sweepStagingDir } from '../staging-names.js';
import { CachedWriteProbe, probeLocalFile } from '../write-probe.js';
import type { UploadSinkPool } from '../../pools/upload-sink.js';

const PROBE_BODY = Buffer.from([0]);

// Blobs in an S3 (or S3-compatible) bucket, under their content address (see keys.ts).
// An upload is staged first, either streamed into a staging object or spooled to tempPath,
// and only becomes visible under its content address on commit: a crash at any instant leaves
// either staging garbage (swept at start-up) or a complete blob that the next upload of the
// same bytes reuses, never a partial blob under a real address.
export class S3Datastore implements Datastore {
  readonly type = 's3' as const;
  readonly bucket: S3Bucket;
  readonly redirectWhenCached: boolean;
  private readonly cleaner: LeftoverCleaner;
  /** Spool files (tempPath) this store created: commit accepts no other store's staging. */
  private readonly spools = new WeakSet<FileStagingWriter>();
  private readonly writeProbe = new CachedWriteProbe(() => this.probeNow());

  constructor(
    readonly id: string,
    private readonly opts: S3DatastoreOpts,
    readonly kinds: readonly DatastoreKind[],
    readonly enabled: boolean,
    /** Prefix of our staging objects: the sweep at start-up removes all of ours at once. */
    private readonly instanceTag: string,
    private readonly sinks: UploadSinkPool,
  ) {
    this.bucket = new S3Bucket(createS3Client(opts), opts.bucketName, id);
    this.cleaner = new LeftoverCleaner(this.bucket);
    this.redirectWhenCached = opts.redirectWhenCached;
  }

  /** Creates tempPath; the bucket is not checked here, so a down S3 does not stop the start. */
  async init(): Promise<void> {
    if (this.opts.tempPath) await mkdir(this.opts.tempPath, { recursive: true });
  }

  describe(): string {
    return `s3:${this.opts.ssl ? 'https' : 'http'}://${this.opts.endpoint}/${this.opts.bucketName}`;
  }

  /** Staging background removals still being retried (tests wait for them). */
  get pendingCleanups(): number {
    return this.cleaner.pending;
  }

  async createStaging(): Promise<StagingWriter> {
    if (this.opts.tempPath) {
      const spool = await FileStagingWriter.create(join(this.opts.tempPath, stagingName(this.instanceTag)), this.sinks);
      this.spools.add(spool);
      return spool;
    }
    return new S3StagingWriter(this.bucket, newStagingKey(this.instanceTag), this.cleaner);
  }

  async commit(staging: StagingWriter, sha256: string): Promise<string> {
    const key = contentKey(sha256, this.opts.prefixLength);
    if (staging instanceof FileStagingWriter && this.spools.has(staging)) {
      const { size } = await staging.finish();
      await uploadFile(this.target(key), staging.path, size, this.opts.multipartUploads, this.cleaner);
      this.writeProbe.noteSuccess();
      await rm(staging.path, { force: true });
      return key;
    }
    if (!(staging instanceof S3StagingWriter) || staging.bucket !== this.bucket)
      throw new Error('staging object belongs to another datastore');
    const { size } = await staging.finish();
    // Copying onto an existing blob of the same hash rewrites the same bytes: idempotent.
    await copyObject(this.bucket, staging.key, key, size, this.opts.storageClass, this.cleaner);
    this.writeProbe.noteSuccess();
    await staging.abort(); // the staging object is no longer needed (removal retried if S3 balks)
    return key;
  }

  async putBlob(bytes: Buffer, sha256: string): Promise<string> {
    const key = contentKey(sha256, this.opts.prefixLength);
    // A single PUT is atomic: the key shows the whole blob or nothing, no staging needed.
    await this.bucket.run('PutObject', key, (c, b) =>
      c.send(
        new PutObjectCommand({
          Bucket: b,
          Key: key,
          Body: bytes,
          ContentLength: bytes.length,
          StorageClass: this.storageClass(),
        }),
      ),
    );
    this.writeProbe.noteSuccess();
    return key;
  }

  async exists(location: string): Promise<boolean> {
    const key = checkedLocation(location);
    try {
      await this.bucket.run('HeadObject', key, (c, b) => c.send(new HeadObjectCommand({ Bucket: b, Key: key })));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async modifiedAt(location: string): Promise<number | null> {
    const key = checkedLocation(location);
    try {
      const head = await this.bucket.run('HeadObject', key, (c, b) =>
        c.send(new HeadObjectCommand({ Bucket: b, Key: key })),
      );
      return head.LastModified?.getTime() ?? null;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async readAll(location: string, size?: number): Promise<Buffer> {
    const key = checkedLocation(location);
    const { body } = await getObject(this.bucket, key, undefined);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
    }
    if (size !== undefined && total !== size)
      throw new Error(`blob ${location} is ${total} bytes, its row says ${size}`);
    return Buffer.concat(chunks, total);
  }

  openStream(location: string, range?: ByteRange): Readable {
    const key = checkedLocation(location);
    // S3 answers a range on an empty object with 416: an empty range is an empty stream.
    if (range && range.end < range.start) return Readable.from([]);
    return new S3ReadStream(this.bucket, key, range);
  }

  /** Deleting a missing key succeeds (as rm -f does); any other failure is the caller's. */
  async delete(location: string): Promise<void> {
    await removeLeftover(this.bucket, { key: checkedLocation(location) });
  }

  /** Every key in the bucket except staging objects, a page (1000 keys) at a time. */
  async *listObjects(): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.bucket.run('ListObjectsV2', '', (c, b) =>
        c.send(new ListObjectsV2Command({ Bucket: b, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (!o.Key!.startsWith(STAGING_PREFIX)) yield o.Key!;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async sweepStaging(): Promise<number> {
    const spooled = this.opts.tempPath ? await sweepStagingDir(this.opts.tempPath, this.instanceTag) : 0;
    return spooled + (await sweepBucketStaging(this.bucket, this.instanceTag));
  }

  /** Whether uploads can be stored: a write in the last 30 s, else a tiny staging object put and deleted. */
  probeWrite(): Promise<void> {
    return this.writeProbe.check();
  }

  private async probeNow(): Promise<void> {
    if (this.opts.tempPath) await probeLocalFile(join(this.opts.tempPath, stagingName(this.instanceTag)));
    // A staging key of ours: if the delete fails, the start-up sweep removes it.
    const key = newStagingKey(this.instanceTag);
    await this.bucket.run('PutObject', key, (c, b) =>
      c.send(new PutObjectCommand({ Bucket: b, Key: key, Body: PROBE_BODY, ContentLength: PROBE_BODY.length })),
    );
    await this.cleaner.remove({ key });
  }

  publicUrl(location: string): string | null {
    return publicUrlFor(this.opts.publicBaseUrl, location);
  }

  objectUrl(location: string): string {
    return objectUrlFor(this.opts.ssl, this.opts.endpoint, this.opts.bucketName, location);
  }

  locationOfObjectUrl(url: string): string | null {
    return locationOfObjectUrl(url, this.opts.endpoint, this.opts.bucketName);
  }

  private target(key: string) {
    return { bucket: this.bucket, key, storageClass: this.opts.storageClass };
  }

  private storageClass(): StorageClass | undefined {
    return (this.opts.storageClass || undefined) as StorageClass | undefined;
  }
}
