import { AbortMultipartUploadCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { isNotFound, type S3Bucket } from './bucket.js';

/** Something a failed or abandoned upload may have left in the bucket. */
export interface Leftover {
  key: string;
  /** Set for an unfinished multipart upload (its parts are stored, and billed, until aborted). */
  uploadId?: string;
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;
/** About an hour of retries; after that the sweep at the next start-up removes it. */
const MAX_ATTEMPTS = 70;

export async function removeLeftover(bucket: S3Bucket, l: Leftover): Promise<void> {
  try {
    if (l.uploadId) {
      await bucket.run('AbortMultipartUpload', l.key, (c, b) =>
        c.send(new AbortMultipartUploadCommand({ Bucket: b, Key: l.key, UploadId: l.uploadId })),
      );
    } else {
      await bucket.run('DeleteObject', l.key, (c, b) => c.send(new DeleteObjectCommand({ Bucket: b, Key: l.key })));
    }
  } catch (e) {
    if (!isNotFound(e)) throw e; // already gone (or completed): nothing left
  }
}

// Removes what failed uploads left behind. An upload usually fails because S3 is unreachable,
// and then removing its staging object fails the same way: the removal is retried in the
// background with backoff, so the bucket is clean again soon after S3 comes back, without
// waiting for a restart. Nothing here ever throws at the caller: the upload's own error is the
// one the client must see.
export class LeftoverCleaner {
  private readonly waiting = new Set<NodeJS.Timeout>();

  constructor(private readonly bucket: S3Bucket) {}

  /** Tries now; on failure keeps retrying in the background. Resolves after the first try. */
  async remove(l: Leftover): Promise<void> {
    await this.attempt(l, 1);
  }

  /** Retries scheduled and not yet done. */
  get pending(): number {
    return this.waiting.size;
  }

  private async attempt(l: Leftover, n: number): Promise<void> {
    try {
      await removeLeftover(this.bucket, l);
    } catch {
      if (n >= MAX_ATTEMPTS) return; // the next start-up's sweep removes it
      const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (n - 1));
      const timer = setTimeout(() => {
        this.waiting.delete(timer);
        void this.attempt(l, n + 1);
      }, delay);
      timer.unref(); // a pending cleanup must not keep a stopping process alive
      this.waiting.add(timer);
    }
  }
}
