import { Writable } from 'node:stream';
import type { Db, Queryable } from '../db/driver.js';
import { lockHash } from '../db/media.js';
import { type StoredPart } from '../db/exports.js';
import { blobReferenced } from '../db/blobs.js';
import type { Datastore, StagingWriter } from '../datastores/datastore.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { BodySource } from '../http/types.js';
import { Errors } from '../errors.js';
import { streamToStaging } from '../pipelines/steps/store-upload.js';

// Archive parts kept in a datastore: written through staging and committed under their SHA-256
// like any blob (so two identical parts share one object), and deleted only once no row of any
// kind (export part, import part, media, thumbnail) names the object, under the per-hash lock
// every writer of a blob takes.

/** A Writable over a staging object, with the staging writer's backpressure. */
export function stagingWritable(staging: StagingWriter): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      try {
        if (staging.write(chunk)) cb();
        else staging.onDrain(() => cb());
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}

/** Finishes a staging object and commits it, running `record` in the same transaction. */
export async function commitPart<T>(
  db: Db,
  ds: Datastore,
  staging: StagingWriter,
  record: (q: Queryable, obj: { sha256: string; size: number; location: string }) => Promise<T>,
): Promise<T> {
  const { sha256, size } = await staging.finish();
  return db.tx(async (q) => {
    await lockHash(q, sha256);
    const location = await ds.commit(staging, sha256);
    return record(q, { sha256, size, location });
  });
}

/** Deletes the parts' objects that nothing references any more; a missing datastore is skipped. */
export async function dropPartObjects(db: Db, datastores: DatastoreRegistry, parts: StoredPart[]): Promise<void> {
  for (const p of parts) {
    const ds = datastores.get(p.datastoreId);
    if (!ds) continue;
    await db.tx(async (q) => {
      await lockHash(q, p.sha256);
      if (await blobReferenced(q, p.datastoreId, p.location)) return;
      await ds.delete(p.location);
    });
  }
}

/** Streams a request body into a staging object, cut off at `maxBytes`; the caller commits or aborts. */
export async function bodyToStaging(body: BodySource, staging: StagingWriter, maxBytes: number): Promise<number> {
  if (body.contentLength !== null && body.contentLength > maxBytes) throw Errors.tooLarge(maxBytes);
  const { size } = await streamToStaging(body, staging, maxBytes);
  if (size === 0) throw Errors.missingParam('The body must be an archive part (.tgz)');
  return size;
}
