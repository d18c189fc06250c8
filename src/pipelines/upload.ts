import { Errors, MatrixError } from '../errors.js';
import type { BodySource } from '../http/types.js';
import type { Datastore, StagingWriter } from '../datastores/datastore.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { Db } from '../db/driver.js';
import { findBlobByHash, findExactUpload, insertMedia, lockHash, type MediaRow } from '../db/media.js';
import { deleteReservation } from '../db/reservations.js';
import { newMediaId } from '../matrix/ids.js';
import { placeBlob } from './steps/place-blob.js';

export interface UploadDeps {
  db: Db;
  datastores: DatastoreRegistry;
}

export interface UploadInput {
  origin: string;
  userId: string;
  uploadName: string | null;
  contentType: string | null;
  body: BodySource;
  /** <= 0: unlimited. */
  maxBytes: number;
  minBytes: number;
  /** The homeserver's datastores (per-domain config may narrow them). */
  datastoreIds: readonly string[];
  requiresAuth: boolean;
  /** Async upload (MSC2246): the reserved ID to fill. */
  reservedMediaId?: string;
  /** Receives a copy of the first bytes (up to HEAD_BYTES) once the body has ended: lets the
   * caller sniff the type for thumbnails and blurhash without reading the blob back. */
  onHead?: (head: Buffer) => void;
}

export const HEAD_BYTES = 512;

// Step 1: refuse a declared size over the limit before reading a byte.
// Step 2: stream into a staging object with socket backpressure; the staging writer hashes
//         (SHA-256) on a sink worker as the bytes go to disk.
// Step 3: check the size, make the staging bytes durable, take the digest.
// Step 4: under a per-hash lock, dedup against stored blobs or commit ours, then insert the row.
export async function uploadMedia(deps: UploadDeps, input: UploadInput): Promise<MediaRow> {
  const { body, maxBytes } = input;
  if (maxBytes > 0 && body.contentLength !== null && body.contentLength > maxBytes) throw Errors.tooLarge(maxBytes);

  const ds = deps.datastores.pick('local_media', input.datastoreIds);
  if (!ds) throw Errors.unavailable('No datastore accepts local media for this homeserver');
  const staging = await ds.createStaging();
  try {
    const size = await streamToStaging(body, staging, maxBytes, input.onHead);
    if (size < input.minBytes) throw Errors.tooSmall(input.minBytes);
    const { sha256, size: written } = await staging.finish();
    if (written !== size) throw new Error(`staging wrote ${written} bytes of ${size}`);
    const row = await deps.db.tx((q) => commitUpload(q, deps, ds, staging, input, sha256, size));
    return row;
  } catch (e) {
    await staging.abort();
    throw e;
  }
}

function streamToStaging(body: BodySource, staging: StagingWriter, maxBytes: number, onHead?: (head: Buffer) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const head = onHead ? Buffer.alloc(HEAD_BYTES) : null;
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    staging.onDrain(function again() {
      body.resume();
      staging.onDrain(again);
    });
    body.start({
      onChunk(chunk) {
        if (failed) return;
        // Chunks are only valid during this call: the head is copied.
        if (head && size < HEAD_BYTES) chunk.copy(head, size, 0, Math.min(chunk.length, HEAD_BYTES - size));
        size += chunk.length;
        // Chunked bodies and lying Content-Lengths are cut off at maxBytes + 1.
        if (maxBytes > 0 && size > maxBytes) {
          body.pause();
          return fail(Errors.tooLarge(maxBytes));
        }
        try {
          if (!staging.write(chunk)) body.pause();
        } catch (e) {
          fail(e as Error);
        }
      },
      onEnd() {
        if (failed) return;
        if (body.contentLength !== null && size !== body.contentLength) {
          return fail(Errors.invalidParam(`Body was ${size} bytes but Content-Length said ${body.contentLength}`));
        }
        if (head) onHead!(head.subarray(0, Math.min(size, HEAD_BYTES)));
        resolve(size);
      },
      onError: fail,
    });
  });
}

async function commitUpload(
  q: Parameters<Parameters<Db['tx']>[0]>[0], deps: UploadDeps, ds: Datastore, staging: StagingWriter,
  input: UploadInput, sha256: string, size: number,
): Promise<MediaRow> {
  await lockHash(q, sha256);
  // A perfect match is a media row with this hash, so content never seen before (most
  // uploads) needs no second query: one statement fewer inside the transaction, which with
  // PGlite holds the whole database.
  const candidates = await findBlobByHash(q, sha256);
  if (!input.reservedMediaId && candidates.length > 0) {
    const same = await findExactUpload(q, input.origin, input.userId, sha256, input.uploadName, input.contentType);
    if (same) {
      await staging.abort();
      return same;
    }
  }
  const { datastoreId, location } = await placeBlob(deps.datastores, ds, staging, sha256, size, candidates);
  const row: MediaRow = {
    origin: input.origin, mediaId: input.reservedMediaId ?? newMediaId(), uploadName: input.uploadName,
    contentType: input.contentType, userId: input.userId, sha256, sizeBytes: size, datastoreId, location,
    creationTs: Date.now(), quarantined: false, requiresAuth: input.requiresAuth,
  };
  if (input.reservedMediaId) {
    if (!(await insertMedia(q, row, { allowReserved: true }))) throw Errors.cannotOverwrite();
    await deleteReservation(q, input.origin, input.reservedMediaId);
    return row;
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await insertMedia(q, row, { allowReserved: false })) return row;
    row.mediaId = newMediaId(); // collision with an existing or reserved ID: draw again
  }
  throw new MatrixError('M_UNKNOWN', 500, 'Could not allocate a media ID');
}
