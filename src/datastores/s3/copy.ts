import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type StorageClass,
} from '@aws-sdk/client-s3';
import type { S3Bucket } from './bucket.js';
import type { LeftoverCleaner } from './leftovers.js';

/** S3's limit for a single CopyObject; larger objects are copied part by part. */
export const SINGLE_COPY_MAX_BYTES = 5 * 1024 ** 3;
/** Part size of a multipart copy (between S3's 5 MiB and 5 GiB; 10,000 parts reach 5 TiB). */
const COPY_PART_BYTES = 512 * 1024 ** 2;

function copySource(bucket: S3Bucket, key: string): string {
  // Keys are our own ([A-Za-z0-9_./-]) so nothing needs escaping but the separator's meaning.
  return `${bucket.name}/${key}`;
}

/**
 * Copies `from` to `to` inside the bucket, server-side (no bytes through this process), giving
 * the copy `storageClass`. `singleMax` is only lowered by tests.
 */
export async function copyObject(
  bucket: S3Bucket,
  from: string,
  to: string,
  size: number,
  storageClass: string,
  cleaner: LeftoverCleaner,
  singleMax = SINGLE_COPY_MAX_BYTES,
): Promise<void> {
  const StorageClass = (storageClass || undefined) as StorageClass | undefined;
  if (size <= singleMax) {
    await bucket.run('CopyObject', to, (c, b) =>
      c.send(
        new CopyObjectCommand({
          Bucket: b,
          Key: to,
          CopySource: copySource(bucket, from),
          StorageClass,
          MetadataDirective: 'COPY',
        }),
      ),
    );
    return;
  }
  const created = await bucket.run('CreateMultipartUpload', to, (c, b) =>
    c.send(new CreateMultipartUploadCommand({ Bucket: b, Key: to, StorageClass })),
  );
  const uploadId = created.UploadId!;
  try {
    const partSize = Math.min(COPY_PART_BYTES, singleMax);
    const parts: CompletedPart[] = [];
    // One part at a time: each is a server-side copy, so there is no transfer here to overlap.
    for (let start = 0, n = 1; start < size; start += partSize, n++) {
      const end = Math.min(size, start + partSize) - 1;
      const r = await bucket.run('UploadPartCopy', to, (c, b) =>
        c.send(
          new UploadPartCopyCommand({
            Bucket: b,
            Key: to,
            UploadId: uploadId,
            PartNumber: n,
            CopySource: copySource(bucket, from),
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        ),
      );
      parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag });
    }
    await bucket.run('CompleteMultipartUpload', to, (c, b) =>
      c.send(
        new CompleteMultipartUploadCommand({
          Bucket: b,
          Key: to,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      ),
    );
  } catch (e) {
    await cleaner.remove({ key: to, uploadId });
    throw e;
  }
}
