import type { Readable } from 'node:stream';
import type { Db, Queryable } from '../db/driver.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { StagingWriter } from '../datastores/datastore.js';
import { findBlobByHash, getMedia, insertMedia, lockHash, type MediaRow } from '../db/media.js';
import { blockHashes, setPurpose } from '../db/moderation.js';
import { placeBlob } from '../pipelines/steps/place-blob.js';

// One imported media item (a Synapse file, an archive entry): its bytes are streamed into a
// staging object (hashed as they go), then committed with dedup under the per-hash lock and
// its row inserted with the media ID it had, in one transaction, as uploads are. A crash at
// any instant leaves either nothing or the whole item; a repeated import of the same mxc is a
// no-op ('exists'). Quotas are not checked (imports are an operator's act) but the row is
// counted in the uploader's usage by the insert trigger like any other.

export interface ImportedMedia {
  origin: string;
  mediaId: string;
  uploadName: string | null;
  contentType: string | null;
  /** '' for remote media. */
  userId: string;
  creationTs: number;
  quarantined: boolean;
  requiresAuth: boolean;
  /** Who quarantined it, when known (Synapse's quarantined_by). */
  quarantinedBy?: string | null;
  /** Protected from quarantine and purge (Synapse's safe_from_quarantine, MMR's pinned). */
  pinned?: boolean;
}

export interface ImportOptions {
  kind: 'local_media' | 'remote_media';
  /** The source's hash: the item is refused ('mismatch') when the bytes hash otherwise. */
  expectSha256?: string;
  expectSize?: number;
  /** Limits the datastores it may go to (a homeserver's datastores); all by default. */
  datastoreIds?: readonly string[];
  /** Who a quarantine flag is recorded against in quarantined_hashes. */
  actor?: string;
}

export type ImportOutcome = { outcome: 'imported' | 'exists' | 'mismatch'; detail?: string; row?: MediaRow };

export interface ImportDeps {
  db: Db;
  datastores: DatastoreRegistry;
}

export async function importMediaFromStream(
  deps: ImportDeps,
  media: ImportedMedia,
  open: () => Readable | Promise<Readable>,
  opts: ImportOptions,
): Promise<ImportOutcome> {
  // 1. Already here (a re-run, or an earlier part of this one): nothing to read.
  if (await getMedia(deps.db, media.origin, media.mediaId)) return { outcome: 'exists' };
  const ids = opts.datastoreIds ?? deps.datastores.all().map((d) => d.id);
  const ds = deps.datastores.pick(opts.kind, ids);
  if (!ds) throw new Error(`no datastore accepts ${opts.kind} for ${media.origin}`);
  // 2. Stream into staging; the writer hashes.
  const staging = await ds.createStaging();
  try {
    await pipeToStaging(await open(), staging);
    const { sha256, size } = await staging.finish();
    if (opts.expectSize !== undefined && size !== opts.expectSize) {
      await staging.abort();
      return { outcome: 'mismatch', detail: `${size} bytes, the source says ${opts.expectSize}` };
    }
    if (opts.expectSha256 !== undefined && sha256 !== opts.expectSha256.toLowerCase()) {
      await staging.abort();
      return { outcome: 'mismatch', detail: `sha256 ${sha256}, the source says ${opts.expectSha256}` };
    }
    // 3. Under the hash lock: dedup, commit, insert (the ID it had; taken means a concurrent import).
    return await deps.db.tx(async (q) => {
      await lockHash(q, sha256);
      const candidates = await findBlobByHash(q, sha256);
      const placed = await placeBlob(deps.datastores, { ds, staging, sha256, size, candidates });
      const row: MediaRow = {
        ...media,
        sha256,
        sizeBytes: size,
        datastoreId: placed.datastoreId,
        location: placed.location,
      };
      if (!(await insertImported(q, media, row, opts.actor))) {
        if (placed.created) {
          await ds.delete(placed.location);
          deps.datastores.addBytes(ds.id, -size);
        }
        return { outcome: 'exists' } as ImportOutcome;
      }
      return { outcome: 'imported', row } as ImportOutcome;
    });
  } catch (e) {
    await staging.abort();
    throw e;
  }
}

/**
 * Inserts an imported row with the ID it had, and its quarantine and pin state; false when the
 * ID is taken (a concurrent import, or an earlier one).
 */
export async function insertImported(
  q: Queryable,
  media: ImportedMedia,
  row: MediaRow,
  actor: string | undefined,
): Promise<boolean> {
  if (!(await insertMedia(q, row, { allowReserved: true }))) return false;
  await importedState(q, media, row.sha256, actor);
  return true;
}

/** A new imported row's quarantine (who, and the hash blocked) and pin. */
export async function importedState(q: Queryable, media: ImportedMedia, sha256: string, actor: string | undefined) {
  if (media.quarantined) {
    if (media.quarantinedBy) {
      await q.query('UPDATE media SET quarantined_by = $3 WHERE origin = $1 AND media_id = $2', [
        media.origin,
        media.mediaId,
        media.quarantinedBy,
      ]);
    }
    await blockHashes(q, [sha256], media.origin, actor ?? 'import');
  }
  if (media.pinned) await setPurpose(q, media.origin, media.mediaId, 'pinned');
}

/** Copies a stream into staging with backpressure (the writer pauses us when its buffer is full). */
export function pipeToStaging(src: Readable, staging: StagingWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      src.destroy();
      reject(e);
    };
    staging.onDrain(function again() {
      src.resume();
      staging.onDrain(again);
    });
    src.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        if (!staging.write(chunk)) src.pause();
      } catch (e) {
        fail(e as Error);
      }
    });
    src.once('end', () => {
      if (!failed) resolve();
    });
    src.once('error', fail);
  });
}
