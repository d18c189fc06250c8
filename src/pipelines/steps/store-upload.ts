import { Errors } from '../../errors.js';
import type { BodySource } from '../../http/types.js';
import type { StagingWriter } from '../../datastores/datastore.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';
import type { Db } from '../../db/driver.js';
import { findExactUpload, insertMedia, lockHash, type MediaRow } from '../../db/media.js';
import { deleteReservation } from '../../db/reservations.js';
import { uploadHashState } from '../../db/moderation.js';
import { withNewMediaId } from './media-id.js';
import { UploadCommitGroup } from './commit-group.js';
import { discardBlob, dropPrestaged, placeBlob, type Placement } from './place-blob.js';
import { checkQuotaBeforeBody, insertWithinQuota, type UploadQuota } from './quota.js';

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
  /** The uploader's quota (uploads.quotas); null or absent: not counted against one. */
  quota?: UploadQuota | null;
}

export interface StoredUpload {
  row: MediaRow;
  /** A copy of the first bytes (up to HEAD_BYTES): the type is sniffed from them for
   * thumbnails and blurhash without reading the blob back. */
  head: Buffer;
}

export const HEAD_BYTES = 512;

// Step 1: refuse a declared size over the limit, or over the uploader's quota, before reading a byte.
// Step 2: stream into a staging object with socket backpressure; the staging writer hashes
//         (SHA-256) on a sink worker as the bytes go to disk.
// Step 3: check the size, make the staging bytes durable, take the digest; where the store can,
//         link them to their content address now (prestage), so that flush is not spent
//         holding the database (with PGlite, every transaction holds all of it).
// Step 4: under a per-hash lock, refuse quarantined bytes, dedup against stored blobs, check
//         the quota with the user's counter locked, commit ours, then insert the row (whose
//         trigger counts it in the same transaction). On Postgres, prestaged uploads without a
//         quota or a reserved ID do this together with the others waiting (commit-group.ts).
export async function storeUpload(deps: UploadDeps, input: UploadInput): Promise<StoredUpload> {
  const { body, maxBytes } = input;
  if (maxBytes > 0 && body.contentLength !== null && body.contentLength > maxBytes) throw Errors.tooLarge(maxBytes);
  if (input.quota) {
    const who = { origin: input.origin, userId: input.userId, declared: body.contentLength };
    await checkQuotaBeforeBody(deps.db, who, input.quota);
  }

  const ds = deps.datastores.pick('local_media', input.datastoreIds);
  if (!ds) throw Errors.unavailable('No datastore accepts local media for this homeserver');
  const staging = await ds.createStaging();
  try {
    const { size, head } = await streamToStaging(body, staging, maxBytes);
    if (size < input.minBytes) throw Errors.tooSmall(input.minBytes);
    const { sha256, size: written, prestaged } = await staging.finish({ prestage: true });
    if (written !== size) throw new Error(`staging wrote ${written} bytes of ${size}`);
    const bytes = { ds, staging, sha256, size, prestaged };
    const row =
      prestaged && !input.reservedMediaId && !input.quota && deps.db.kind !== 'pglite'
        ? await groupOf(deps).commit({ ...input, bytes: { ...bytes, prestaged } })
        : await deps.db.tx((q) => commitUpload(q, deps, input, bytes));
    // The staging name of a prestaged blob is only a second link to it now: dropped before the
    // answer, so an answered upload leaves exactly its blob (a failure, or a crash first, leaves
    // the name to the staging sweep at the next start).
    if (prestaged) await staging.abort().catch(() => undefined);
    return { row, head };
  } catch (e) {
    await staging.abort();
    throw e;
  }
}

/** One commit group per database (src/pipelines/steps/commit-group.ts). */
const groups = new WeakMap<Db, UploadCommitGroup>();
function groupOf(deps: UploadDeps): UploadCommitGroup {
  let g = groups.get(deps.db);
  if (!g) groups.set(deps.db, (g = new UploadCommitGroup(deps.db, deps.datastores)));
  return g;
}

/** A request body into staging with socket backpressure, cut off past maxBytes (<= 0: no limit). */
export function streamToStaging(
  body: BodySource,
  staging: StagingWriter,
  maxBytes: number,
): Promise<{ size: number; head: Buffer }> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const head = Buffer.alloc(HEAD_BYTES);
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
        if (size < HEAD_BYTES) chunk.copy(head, size, 0, Math.min(chunk.length, HEAD_BYTES - size));
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
        resolve({ size, head: head.subarray(0, Math.min(size, HEAD_BYTES)) });
      },
      onError: fail,
    });
  });
}

async function commitUpload(
  q: Parameters<Parameters<Db['tx']>[0]>[0],
  deps: UploadDeps,
  input: UploadInput,
  bytes: Omit<Placement, 'candidates'>,
): Promise<MediaRow> {
  const { ds, staging, sha256, size, prestaged } = bytes;
  await lockHash(q, sha256);
  // Quarantined bytes are refused (under the lock, so a quarantine that commits first wins).
  const { blocked, candidates } = await uploadHashState(q, sha256, input.origin);
  if (blocked) {
    if (prestaged) await dropPrestaged(deps.datastores, bytes, candidates);
    throw Errors.contentBlocked();
  }
  // A perfect match is a media row with this hash, so content never seen before (most
  // uploads) needs no second query: one statement fewer inside the transaction, which with
  // PGlite holds the whole database.
  if (!input.reservedMediaId && candidates.length > 0) {
    const same = await findExactUpload(q, input.origin, input.userId, sha256, input.uploadName, input.contentType);
    if (same) {
      if (prestaged) await dropPrestaged(deps.datastores, bytes, candidates);
      else await staging.abort();
      return same;
    }
  }
  const placed = await placeBlob(deps.datastores, { ds, staging, sha256, size, candidates, prestaged });
  const { datastoreId, location } = placed;
  const row: MediaRow = {
    origin: input.origin,
    mediaId: input.reservedMediaId ?? '',
    uploadName: input.uploadName,
    contentType: input.contentType,
    userId: input.userId,
    sha256,
    sizeBytes: size,
    datastoreId,
    location,
    creationTs: Date.now(),
    quarantined: false,
    requiresAuth: input.requiresAuth,
  };
  // The quota is checked by the insert itself (insertWithinQuota), after the blob is placed, so
  // the user's counter row is locked only through that one statement and the commit (the
  // insert's trigger locks it then anyway). Locked before placeBlob, each user's uploads queued
  // behind one another's blob commits (bench upload-quotas, Postgres, 1 KiB: 0.68 of quotas
  // off); as a separate statement before the insert, 0.88-0.94. A refused upload's new blob is
  // removed below, still under the hash lock, so no upload of the same bytes can be using it.
  const quota = input.quota;
  const insert = (opts: { allowReserved: boolean }) =>
    quota ? insertWithinQuota(deps.db, q, row, quota, opts) : insertMedia(q, row, opts);
  try {
    if (input.reservedMediaId) {
      if (!(await insert({ allowReserved: true }))) throw Errors.cannotOverwrite();
      await deleteReservation(q, input.origin, input.reservedMediaId);
      return row;
    }
    // A collision with an existing or reserved ID draws again.
    await withNewMediaId(async (id) => {
      row.mediaId = id;
      return insert({ allowReserved: false });
    });
  } catch (e) {
    // Any refusal (over quota, an async PUT onto a filled ID, IDs exhausted) or a failed insert:
    // a blob this upload made is no row's, and we still hold its hash, so it goes now rather
    // than waiting for the orphan collector (a client repeating a refused PUT would pile them up).
    if (placed.created) await discardBlob(deps.datastores, ds, location, size);
    throw e;
  }
  return row;
}
