import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Bucket } from './bucket.js';
import { isContentKey, STAGING_PREFIX } from './keys.js';
import { removeLeftover, type Leftover } from './leftovers.js';
import { FOREIGN_STAGING_MAX_AGE_MS } from '../datastore.js';
import { sweepable } from '../staging-names.js';

/**
 * Removes staging objects and unfinished multipart uploads that no running upload of ours can
 * own: all of this instance's (it is starting, so none of its uploads is running) and other
 * instances' once older than FOREIGN_STAGING_MAX_AGE_MS. Returns how many were removed.
 */
export async function sweepBucketStaging(bucket: S3Bucket, instanceTag: string): Promise<number> {
  const now = Date.now();
  let removed = 0;
  for await (const l of stagingObjects(bucket, instanceTag, now)) {
    await removeLeftover(bucket, l);
    removed++;
  }
  for await (const l of staleMultipartUploads(bucket, instanceTag, now)) {
    await removeLeftover(bucket, l);
    removed++;
  }
  return removed;
}

async function* stagingObjects(bucket: S3Bucket, instanceTag: string, now: number): AsyncGenerator<Leftover> {
  let token: string | undefined;
  do {
    const page = await bucket.run('ListObjectsV2', STAGING_PREFIX, (c, b) =>
      c.send(
        new ListObjectsV2Command({
          Bucket: b,
          Prefix: STAGING_PREFIX,
          ContinuationToken: token,
        }),
      ),
    );
    for (const o of page.Contents ?? []) {
      const name = o.Key!.slice(STAGING_PREFIX.length);
      if (sweepable(name, instanceTag, o.LastModified?.getTime() ?? now, now)) yield { key: o.Key! };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/**
 * Multipart uploads left open: staging ones (as above), and old ones to a content address (a
 * spooled commit cut off by a crash; its parts are billed until aborted). Services without
 * ListMultipartUploads skip this part: it only ever frees space.
 */
async function* staleMultipartUploads(bucket: S3Bucket, instanceTag: string, now: number): AsyncGenerator<Leftover> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    let page;
    try {
      page = await bucket.run('ListMultipartUploads', '', (c, b) =>
        c.send(
          new ListMultipartUploadsCommand({
            Bucket: b,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ),
      );
    } catch (e) {
      if ((e as { status?: number }).status === 501) return; // NotImplemented
      throw e;
    }
    for (const u of page.Uploads ?? []) {
      const key = u.Key!;
      const started = u.Initiated?.getTime() ?? now;
      const staging =
        key.startsWith(STAGING_PREFIX) && sweepable(key.slice(STAGING_PREFIX.length), instanceTag, started, now);
      const abandoned = isContentKey(key) && now - started > FOREIGN_STAGING_MAX_AGE_MS;
      if (staging || abandoned) yield { key, uploadId: u.UploadId! };
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
}
