import type { Db } from '../db/driver.js';
import { lockHash } from '../db/media.js';
import { blobReferenced, blobsBefore, repointBlob, type BlobRef } from '../db/blobs.js';
import { saveTaskProgress } from '../db/tasks.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { Datastore } from '../datastores/datastore.js';
import { copyBlob } from '../datastores/copy-blob.js';
import { LostClaimError, type TaskContext, type TaskHandler } from './runner.js';

// MMR's `storage_migration` task: moves every blob that rows created before `before_ts` keep in
// datastore `source` to datastore `target`. Per blob: copy through the target's staging with
// the hash checked, then in one transaction (under the blob's hash lock, which uploads that
// deduplicate against it also take) repoint every media and thumbnail row of it, then delete
// the source object once no row references it. A crash between any two steps leaves either
// rows on a complete source blob or rows on a complete target blob; a resumed task finds only
// the blobs not yet repointed.

export const STORAGE_MIGRATION = 'storage_migration';

export interface StorageMigrationParams {
  source: string;
  target: string;
  before_ts: number;
}

export interface StorageMigrationDeps {
  db: Db;
  datastores: DatastoreRegistry;
  /** Drops cached rows of repointed media and thumbnails (this instance's caches). */
  forgetRows(rows: { origin: string; mediaId: string; thumbnail: boolean }[]): void;
  /**
   * How long a source object outlives its last row. Other instances may hold the old row in
   * their 60 s row caches, and a download may have read the row just before the repoint.
   */
  deleteGraceMs: number;
}

interface Progress {
  moved: number;
  bytes: number;
  failed: number;
  last_error?: string;
  /** Source objects no row references any more, deleted once due; kept here so a resumed task deletes them too. */
  pending_deletes: { location: string; sha256: string; due_ts: number; size: number }[];
}

const BATCH = 100;

export function storageMigration(deps: StorageMigrationDeps): TaskHandler {
  return async (ctx) => {
    const p = ctx.task.params as unknown as StorageMigrationParams;
    const src = deps.datastores.get(p.source);
    const dst = deps.datastores.get(p.target);
    if (!src) throw new Error(`source datastore ${p.source} is not configured`);
    if (!dst) throw new Error(`target datastore ${p.target} is not configured`);
    const prog: Progress = {
      moved: 0,
      bytes: 0,
      failed: 0,
      pending_deletes: [],
      ...(ctx.task.progress as Partial<Progress> | null),
    };
    let cursor = '';
    for (;;) {
      const batch = await blobsBefore(deps.db, src.id, p.before_ts, cursor, BATCH);
      if (batch.length === 0) break;
      for (const blob of batch) {
        ctx.signal.throwIfAborted();
        cursor = blob.location;
        try {
          await moveBlob(deps, ctx, src, dst, blob, prog);
        } catch (e) {
          if (ctx.signal.aborted || e instanceof LostClaimError) throw e;
          // One unreadable blob must not stop the rest; it stays where it is and is reported.
          prog.failed++;
          prog.last_error = (e as Error).message;
          ctx.log.warn('could not move a blob; it stays in the source datastore', {
            location: blob.location,
            error: e as Error,
          });
          await ctx.saveProgress({ ...prog });
        }
        await deleteDue(deps, ctx, src, prog, Date.now());
      }
    }
    // Whatever is still waiting out its grace period is deleted before the task ends.
    while (prog.pending_deletes.length > 0) {
      const next = Math.min(...prog.pending_deletes.map((d) => d.due_ts));
      await sleep(Math.max(0, next - Date.now()), ctx.signal);
      await deleteDue(deps, ctx, src, prog, Date.now());
    }
    if (prog.failed > 0) throw new Error(`${prog.failed} blob(s) could not be moved; last error: ${prog.last_error}`);
  };
}

async function moveBlob(
  deps: StorageMigrationDeps,
  ctx: TaskContext,
  src: Datastore,
  dst: Datastore,
  blob: BlobRef,
  prog: Progress,
): Promise<void> {
  const newLocation = await copyBlob(src, dst, blob, ctx.signal);
  const moved = await deps.db
    .tx(async (q) => {
      await lockHash(q, blob.sha256);
      const rows = await repointBlob(
        q,
        { datastoreId: src.id, location: blob.location },
        { datastoreId: dst.id, location: newLocation },
      );
      // Under the hash lock no upload can start referencing the source copy any more: whoever
      // deduplicates next finds the target copy.
      if (!(await blobReferenced(q, src.id, blob.location))) {
        prog.pending_deletes.push({
          location: blob.location,
          sha256: blob.sha256,
          due_ts: Date.now() + deps.deleteGraceMs,
          size: blob.sizeBytes,
        });
      }
      prog.moved++;
      prog.bytes += blob.sizeBytes;
      // The progress commits with the repoint, so a resumed task never forgets a pending delete.
      if (!(await saveTaskProgress(q, ctx.task.id, ctx.owner, { ...prog }))) throw new LostClaimError(ctx.task.id);
      return rows;
    })
    .catch((e) => {
      // The transaction rolled back: undo the in-memory bookkeeping too.
      const i = prog.pending_deletes.findIndex((d) => d.location === blob.location);
      if (i >= 0) prog.pending_deletes.splice(i, 1);
      throw e;
    });
  deps.datastores.addBytes(dst.id, blob.sizeBytes);
  deps.forgetRows(moved);
}

async function deleteDue(
  deps: StorageMigrationDeps,
  ctx: TaskContext,
  src: Datastore,
  prog: Progress,
  now: number,
): Promise<void> {
  const due = prog.pending_deletes.filter((d) => d.due_ts <= now);
  if (due.length === 0) return;
  for (const d of due) {
    // Checked again, and deleted, under the hash lock: an upload of the same bytes may have
    // committed them to the source store again since (same content address) with a new row,
    // and uploads commit under this lock, so none can slip in between the check and the delete.
    const deleted = await deps.db.tx(async (q) => {
      await lockHash(q, d.sha256);
      if (await blobReferenced(q, src.id, d.location)) return false;
      await src.delete(d.location);
      return true;
    });
    if (deleted) deps.datastores.addBytes(src.id, -d.size);
  }
  prog.pending_deletes = prog.pending_deletes.filter((d) => d.due_ts > now);
  await ctx.saveProgress({ ...prog });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
