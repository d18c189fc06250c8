import type { S3Client } from '@aws-sdk/client-s3';
import { MediaRepoError } from '../../errors.js';

/** An S3 failure that says which datastore, operation and key it was about. */
export class S3OperationError extends MediaRepoError<'MR_ERR_S3_OPERATION'> {
  /** HTTP status S3 answered with; undefined when it did not answer (network, timeout). */
  readonly status: number | undefined;

  constructor(store: string, op: string, key: string, cause: unknown) {
    const meta = (cause as { $metadata?: { httpStatusCode?: number } })?.$metadata;
    const name = (cause as Error)?.name ?? 'Error';
    super(
      'MR_ERR_S3_OPERATION',
      `s3 datastore ${store}: ${op} ${key || '(bucket)'} failed: ${name}: ${(cause as Error)?.message ?? String(cause)}`,
      { cause },
    );
    this.name = 'S3OperationError';
    this.status = meta?.httpStatusCode;
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof S3OperationError && e.status === 404;
}

// One datastore's bucket: the client, the bucket's name and the datastore ID that error
// messages carry, since an operator reading "NoSuchBucket" needs to know which config entry.
export class S3Bucket {
  constructor(
    readonly client: S3Client,
    readonly name: string,
    readonly storeId: string,
  ) {}

  /** Told of every operation started (media_s3_operations_total); set by the metrics wiring. */
  onOperation: ((op: string) => void) | null = null;

  /** Runs one SDK call; its failure becomes an S3OperationError naming the operation and key. */
  async run<T>(op: string, key: string, call: (client: S3Client, bucket: string) => Promise<T>): Promise<T> {
    this.onOperation?.(op);
    try {
      return await call(this.client, this.name);
    } catch (e) {
      throw new S3OperationError(this.storeId, op, key, e);
    }
  }
}
