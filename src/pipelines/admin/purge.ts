import { Errors } from '../../errors.js';
import { getMedia } from '../../db/media.js';
import { getPurpose, mediaKeysPage, type MediaSelection } from '../../db/moderation.js';
import {
  clearPendingDeletes,
  lockHashes,
  notePendingDeletes,
  pendingDeletes,
  purgeMediaRows,
  unreferenced,
  type FreedBlob,
  type MediaKey,
} from '../../db/purge.js';
import type { MediaChange } from '../../cache/invalidation.js';
import { recordAction } from './audit.js';
import { localOrigins, logChange, mediaKeyString, type Actor, type ModerationDeps } from './moderation-deps.js';

// Purges delete media rows and their thumbnails, and then each blob that no row points at any
// more. Dedup makes the second part the hard one: a blob is shared by every row with the same
// bytes (users, homeservers, thumbnails), so it is deleted only under its hash lock, after a
// check that no row refers to it, the same lock an identical upload takes before it decides
// to reuse the blob. A crash between the two steps leaves the freed blobs in the
// list of pending deletes (written with the rows' deletion), which drainPendingDeletes works off.
// Quarantined rows stay as tombstones; purged local IDs are reserved.

/** Keys per batch: one transaction for the rows, one for the blobs. */
export const PURGE_BATCH = 1000;
/** Blob deletions in flight at once within a batch. */
const DELETE_CONCURRENCY = 8;
/** The answer lists at most this many mxc URIs (`total` counts all). */
export const AFFECTED_LIMIT = 10_000;

export interface PurgeResult {
  /** mxc URIs purged, at most AFFECTED_LIMIT. */
  affected: string[];
  total: number;
  blobsDeleted: number;
  bytesFreed: number;
}

/** Adds one batch's outcome to the running result. */
function add(into: PurgeResult, batch: { purged: MediaKey[]; blobsDeleted: number; bytesFreed: number }): void {
  into.total += batch.purged.length;
  into.blobsDeleted += batch.blobsDeleted;
  into.bytesFreed += batch.bytesFreed;
  for (const k of batch.purged) {
    if (into.affected.length >= AFFECTED_LIMIT) break;
    into.affected.push(`mxc://${mediaKeyString(k)}`);
  }
}

// Step 1: rows: delete (or tombstone) the batch and its thumbnails, reserve local IDs and log
//         the invalidation, in one transaction; every cache forgets.
// Step 2: blobs: under the batch's hash locks, delete each freed blob that no row refers to.
export async function purgeKeys(
  deps: ModerationDeps,
  keys: MediaKey[],
  reason: string,
): Promise<{ purged: MediaKey[]; blobsDeleted: number; bytesFreed: number }> {
  if (keys.length === 0) return { purged: [], blobsDeleted: 0, bytesFreed: 0 };
  const local = localOrigins(deps.config());
  const { purged, freed } = await deps.db.tx(async (q) => {
    const out = await purgeMediaRows(q, keys, local, reason);
    await notePendingDeletes(q, out.freed);
    await logChange(q, changeOf(out.purged, out.freed));
    return out;
  });
  deps.invalidator.announce(changeOf(purged, freed));
  const { count, bytes } = await deleteUnreferenced(deps, freed);
  return { purged, blobsDeleted: count, bytesFreed: bytes };
}

function changeOf(purged: MediaKey[], freed: FreedBlob[]): MediaChange {
  return { media: purged.map(mediaKeyString), hashes: [...new Set(freed.map((b) => b.sha256))] };
}

/** Deletes the blobs of `freed` that no row points at, under their hash locks. */
export async function deleteUnreferenced(
  deps: ModerationDeps,
  freed: FreedBlob[],
): Promise<{ count: number; bytes: number }> {
  if (freed.length === 0) return { count: 0, bytes: 0 };
  return deps.db.tx(async (q) => {
    await lockHashes(
      q,
      freed.map((b) => b.sha256),
    );
    // Referenced again or deleted below: either way no longer pending. A failed delete is
    // left to the orphan collector. A blob whose pending row another purge took is its to delete.
    const mine = await clearPendingDeletes(q, freed);
    const gone = (await unreferenced(q, freed)).filter((b) => mine.has(`${b.datastoreId}\n${b.location}`));
    let count = 0;
    let bytes = 0;
    for (let i = 0; i < gone.length; i += DELETE_CONCURRENCY) {
      await Promise.all(
        gone.slice(i, i + DELETE_CONCURRENCY).map(async (b) => {
          const ds = deps.datastores.get(b.datastoreId);
          if (!ds) return; // a datastore no longer configured: its blobs are not ours to reach
          try {
            await ds.delete(b.location);
            deps.datastores.addBytes(b.datastoreId, -b.sizeBytes);
            count++;
            bytes += b.sizeBytes;
          } catch (e) {
            // Left for the orphan collector, which finds blobs no row refers to.
            deps.log.warn('could not delete a purged blob; the orphan collector will retry', {
              datastore: b.datastoreId,
              location: b.location,
              error: e as Error,
            });
          }
        }),
      );
    }
    return { count, bytes };
  });
}

/** Works off blobs an interrupted purge freed but did not get to delete (a crash, a stop). */
export async function drainPendingDeletes(deps: ModerationDeps): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for (;;) {
    const batch = await pendingDeletes(deps.db, PURGE_BATCH);
    if (batch.length === 0) break;
    const done = await deleteUnreferenced(deps, batch);
    count += done.count;
    bytes += done.bytes;
    if (batch.length < PURGE_BATCH) break;
  }
  return { count, bytes };
}

/**
 * Purges every unpinned row of a selection with a blob, a batch at a time (keyset order, so
 * memory stays one batch whatever the count), then records the action.
 */
export async function purgeSelection(
  deps: ModerationDeps,
  actor: Actor,
  what: { action: string; target: string; selection: MediaSelection },
): Promise<PurgeResult> {
  const selection: MediaSelection = {
    ...what.selection,
    withBlob: true,
    ...(actor.scopeOrigin ? { origin: actor.scopeOrigin } : {}),
  };
  const result: PurgeResult = { affected: [], total: 0, blobsDeleted: 0, bytesFreed: 0 };
  let after: { origin: string; mediaId: string } | null = null;
  for (;;) {
    const page = await mediaKeysPage(deps.db, selection, after, PURGE_BATCH);
    if (page.length === 0) break;
    after = page[page.length - 1]!;
    add(
      result,
      await purgeKeys(
        deps,
        page.filter((k) => !k.pinned),
        what.action,
      ),
    );
    if (page.length < PURGE_BATCH) break;
  }
  await recordAction(deps.db, deps.log, {
    actor: actor.userId,
    serverName: actor.serverName,
    action: what.action,
    target: what.target,
    details: { purged: result.total, blobs_deleted: result.blobsDeleted, bytes_freed: result.bytesFreed },
  });
  return result;
}

/** Who may purge one media: a repo admin, a local admin of its origin, or its uploader. */
export interface PurgeOneRequest {
  origin: string;
  mediaId: string;
  userId: string;
  serverName: string;
  repoAdmin: boolean;
  /** Resolved only when needed (a homeserver call). */
  localAdmin: () => Promise<boolean>;
}

// Step 1: the row (404 when unknown, or when it is a tombstone already).
// Step 2: the caller may: uploader, local admin of its origin, or repo admin; pinned is kept.
// Step 3: purge it (rows, then the blob if nothing else refers to it), and record.
export async function purgeOne(deps: ModerationDeps, r: PurgeOneRequest): Promise<{ purged: boolean }> {
  const row = await getMedia(deps.db, r.origin, r.mediaId);
  if (!row || row.location === '') throw Errors.notFound();
  const allowed =
    r.repoAdmin ||
    (row.userId !== '' && row.userId === r.userId && row.origin === r.serverName) ||
    (row.origin === r.serverName && (await r.localAdmin()));
  if (!allowed) throw Errors.forbidden('Only the uploader or an admin may purge this media');
  if ((await getPurpose(deps.db, r.origin, r.mediaId)) === 'pinned') {
    throw Errors.forbidden('This media is pinned: unpin it before purging');
  }
  const out = await purgeKeys(deps, [{ origin: r.origin, mediaId: r.mediaId }], 'purge_media');
  await recordAction(deps.db, deps.log, {
    actor: r.userId,
    serverName: r.serverName,
    action: 'purge_media',
    target: `mxc://${r.origin}/${r.mediaId}`,
    details: { purged: out.purged.length, blobs_deleted: out.blobsDeleted, bytes_freed: out.bytesFreed },
  });
  return { purged: out.purged.length > 0 };
}
