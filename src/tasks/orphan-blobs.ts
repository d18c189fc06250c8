import type { Db } from '../db/driver.js';
import { lockHash } from '../db/media.js';
import { blobReferenced, unreferencedLocations } from '../db/blobs.js';
import { hasUnfinishedTask } from '../db/tasks.js';
import type { Datastore } from '../datastores/datastore.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { STORAGE_MIGRATION } from './storage-migration.js';
import { LostClaimError, type TaskContext, type TaskHandler } from './runner.js';

// Removes blobs that no media or thumbnail row references. Uploads commit the blob and then
// insert its row in one transaction, so a process killed between the two (kill -9, OOM, power)
// leaves a complete blob with no row: invisible to clients, disk nothing else would ever free.
//
// Safety, per candidate: it must be a content-addressed blob of ours (foreign files are never
// touched), and it is checked again and deleted under the per-hash lock that every writer of a
// blob takes around "commit blob, insert row" (uploads, thumbnails, remote media, transfers),
// so no commit of the same bytes can slip in between the check and the delete. The age bound
// (far beyond any commit) covers what runs outside that lock: a storage migration's copy sits
// unreferenced until it is repointed, and a transaction that passed its bound may still finish
// its rename. While a migration is unfinished the collector does not run at all: its source
// blobs stay unreferenced on purpose for a grace period (stale row caches still read them).
//
// A first, read-only pass counts the unreferenced blobs: a datastore where too many lack a row
// is refused whole (see SUSPICIOUS_ORPHANS). Memory is one batch of locations, whatever the
// datastore's size.

export const ORPHAN_BLOBS = 'orphan_blobs';

export interface OrphanBlobsParams {
  /** Blobs written less than this long ago are kept. */
  min_age_seconds: number;
}

export interface OrphanBlobsDeps {
  db: Db;
  datastores: DatastoreRegistry;
  /** Counts removed blobs (media_orphan_blobs_removed_total). */
  countRemoved(datastoreId: string): void;
}

interface Progress {
  scanned: number;
  removed: number;
  skipped_young: number;
  failed: number;
  last_error?: string;
}

const BATCH = 500;

/**
 * A crash leaves a handful of orphans; a datastore where many blobs have no row is far more
 * likely misconfigured (its `id` renamed in the config, or one bucket shared by two databases)
 * than crashed that often. Deleting there would destroy media for good, so such a datastore is
 * left alone and reported: more than this many unreferenced blobs, and more than this share.
 */
export const SUSPICIOUS_ORPHANS = 50;
export const SUSPICIOUS_SHARE = 0.05;

/** Pass one, read-only: how many content-addressed blobs the datastore holds, and how many no row references. */
async function census(
  deps: OrphanBlobsDeps,
  ctx: TaskContext,
  ds: Datastore,
): Promise<{ blobs: number; unreferenced: number }> {
  let blobs = 0;
  let unreferenced = 0;
  let batch: string[] = [];
  const count = async () => {
    unreferenced += (await unreferencedLocations(deps.db, ds.id, batch)).length;
    batch = [];
  };
  for await (const location of ds.listObjects!()) {
    ctx.signal.throwIfAborted();
    if (!contentHashOf(location)) continue;
    blobs++;
    batch.push(location);
    if (batch.length === BATCH) await count();
  }
  if (batch.length) await count();
  return { blobs, unreferenced };
}

/** The SHA-256 a content-addressed location stands for: `ab/cd/<sha>` (files) or `[<prefix>/]<sha>` (S3). */
export function contentHashOf(location: string): string | null {
  const parts = location.split('/');
  const sha = parts.pop()!;
  if (!/^[0-9a-f]{64}$/.test(sha)) return null;
  // Every directory level is a piece of the hash's own beginning.
  return sha.startsWith(parts.join('')) && parts.every((p) => /^[0-9a-f]+$/.test(p)) ? sha : null;
}

export function orphanBlobs(deps: OrphanBlobsDeps): TaskHandler {
  return async (ctx) => {
    if (await hasUnfinishedTask(deps.db, STORAGE_MIGRATION)) {
      ctx.log.info(
        'orphan blob collection skipped: a storage migration is unfinished, and its source blobs are unreferenced on purpose',
      );
      return;
    }
    const minAgeMs = (ctx.task.params as unknown as OrphanBlobsParams).min_age_seconds * 1000;
    const prog: Progress = { scanned: 0, removed: 0, skipped_young: 0, failed: 0 };
    for (const ds of deps.datastores.all()) {
      if (!ds.listObjects || !ds.modifiedAt) continue;
      try {
        const seen = await census(deps, ctx, ds);
        if (seen.unreferenced > SUSPICIOUS_ORPHANS && seen.unreferenced > seen.blobs * SUSPICIOUS_SHARE) {
          prog.failed++;
          prog.last_error = `${ds.id}: ${seen.unreferenced} of ${seen.blobs} blobs have no row; nothing removed`;
          ctx.log.error(
            'orphan blob collection refused: too many blobs in this datastore have no row. Check that its id matches the one its media rows name, and that no other database shares it',
            { datastore: ds.id, unreferenced: seen.unreferenced, blobs: seen.blobs },
          );
          continue;
        }
        let batch: string[] = [];
        for await (const location of ds.listObjects()) {
          ctx.signal.throwIfAborted();
          if (!contentHashOf(location)) continue;
          batch.push(location);
          if (batch.length === BATCH) {
            await collectBatch(deps, ctx, ds, batch, minAgeMs, prog);
            batch = [];
          }
        }
        await collectBatch(deps, ctx, ds, batch, minAgeMs, prog);
      } catch (e) {
        if (ctx.signal.aborted || e instanceof LostClaimError) throw e;
        // An unreachable store must not keep the others from being collected.
        prog.failed++;
        prog.last_error = `${ds.id}: ${(e as Error).message}`;
        ctx.log.warn('could not scan a datastore for orphan blobs', { datastore: ds.id, error: e as Error });
      }
    }
    if (prog.removed > 0)
      ctx.log.info('removed blobs that no row referenced', { removed: prog.removed, scanned: prog.scanned });
    if (prog.failed > 0)
      throw new Error(`${prog.failed} orphan blob(s) or datastore(s) failed; last error: ${prog.last_error}`);
  };
}

async function collectBatch(
  deps: OrphanBlobsDeps,
  ctx: TaskContext,
  ds: Datastore,
  batch: string[],
  minAgeMs: number,
  prog: Progress,
): Promise<void> {
  if (batch.length === 0) return;
  prog.scanned += batch.length;
  for (const location of await unreferencedLocations(deps.db, ds.id, batch)) {
    ctx.signal.throwIfAborted();
    try {
      const outcome = await deps.db.tx(async (q) => {
        await lockHash(q, contentHashOf(location)!);
        if (await blobReferenced(q, ds.id, location)) return 'referenced';
        const modified = await ds.modifiedAt!(location);
        if (modified === null) return 'gone';
        if (Date.now() - modified < minAgeMs) return 'young';
        await ds.delete(location);
        return 'removed';
      });
      if (outcome === 'removed') {
        prog.removed++;
        deps.countRemoved(ds.id);
        ctx.log.debug('removed an orphan blob', { datastore: ds.id, location });
      } else if (outcome === 'young') {
        prog.skipped_young++;
      }
    } catch (e) {
      // One blob that cannot be removed must not stop the rest; it is reported.
      prog.failed++;
      prog.last_error = (e as Error).message;
      ctx.log.warn('could not remove an orphan blob', { datastore: ds.id, location, error: e as Error });
    }
  }
  // Also the claim check: a task another instance took over stops here.
  await ctx.saveProgress({ ...prog });
}
