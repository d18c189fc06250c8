import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PutObjectCommand, type StorageClass } from '@aws-sdk/client-s3';
import { ObjectUpload, partBytes, type ObjectTarget } from './object-upload.js';
import type { LeftoverCleaner } from './leftovers.js';

// tempPath: an upload is spooled to a local file first (written and hashed on an upload-sink
// worker, exactly like file staging: a FileStagingWriter) and sent to S3 only on commit,
// straight to its content address since the hash is known by then. One request path per blob
// and no server-side copy, at the price of local disk and of the upload's time to S3 being
// added after the body ends.

/**
 * Sends a local file of `size` bytes to `target`: one PutObject when it fits in a part (or
 * multipart is off), else a multipart upload reading one part at a time.
 */
export async function uploadFile(
  target: ObjectTarget,
  path: string,
  size: number,
  multipart: boolean,
  cleaner: LeftoverCleaner,
): Promise<void> {
  if (!multipart || size <= partBytes(1)) {
    // A small file is read whole so the SDK can retry the request; a large single PUT (multipart
    // off) streams from disk and gets one try: a consumed stream cannot be sent again.
    const body = size <= partBytes(1) ? await readWhole(path, size) : createReadStream(path);
    await target.bucket.run('PutObject', target.key, (c, b) =>
      c.send(
        new PutObjectCommand({
          Bucket: b,
          Key: target.key,
          Body: body,
          ContentLength: size,
          StorageClass: (target.storageClass || undefined) as StorageClass | undefined,
        }),
      ),
    );
    return;
  }
  const upload = new ObjectUpload(target);
  const fh = await open(path, 'r');
  try {
    let offset = 0;
    for (;;) {
      const want = partBytes(upload.nextPartNumber);
      if (size - offset <= want) break; // the rest is the last part
      await upload.addPart(await readExactly(fh, offset, want));
      offset += want;
    }
    await upload.finish(await readExactly(fh, offset, size - offset));
  } catch (e) {
    await upload.abort(cleaner);
    throw e;
  } finally {
    await fh.close();
  }
}

async function readWhole(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    return await readExactly(fh, 0, size);
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: Awaited<ReturnType<typeof open>>, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new Error(`spooled upload is shorter than ${position + length} bytes`);
    got += bytesRead;
  }
  return buf;
}
