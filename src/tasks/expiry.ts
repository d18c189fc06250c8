import { deleteExpiredReservations } from '../db/reservations.js';
import { sweepInvalidations } from '../db/invalidations.js';
import { mediaKeysPage, type MediaSelection } from '../db/moderation.js';
import { notePendingDeletes, purgeThumbnailsBefore, type MediaKey } from '../db/purge.js';
import { deletePreviewRows, imagesNamedSince, oldPreviews, type OldPreview } from '../db/expiry.js';
import { deleteUnreferenced, drainPendingDeletes, purgeKeys, PURGE_BATCH } from '../pipelines/admin/purge.js';
import { recordAction } from '../pipelines/admin/audit.js';
import {
  localOrigins,
  logChange,
  mediaKeyString,
  type Actor,
  type ModerationDeps,
} from '../pipelines/admin/moderation-deps.js';
import type { TaskContext, TaskHandler } from './runner.js';

// MMR's hourly expiry, as one recurring task that one instance of the fleet runs per period
// (src/start/housekeeping.ts schedules it): remote media, thumbnails and URL previews older
// than their expireAfterDays, then the sweeps that keep small tables small. Every step works in
// batches of PURGE_BATCH rows, rows first and each freed blob only once no row refers to it
// (under its hash lock, see pipelines/admin/purge.ts), so memory is one batch whatever the
// backlog. Each step is idempotent: a run resumed on another instance redoes what is left.

export const MEDIA_EXPIRY = 'media_expiry';

/** Who the audit log names for expiry's purges. */
export const EXPIRY_ACTOR: Actor = { userId: '@media-repo:expiry', serverName: '', scopeOrigin: null };

const DAY_MS = 86_400_000;
/** Every instance reads the invalidation log every few seconds; an hour is far past the last reader. */
const INVALIDATION_KEEP_MS = 3_600_000;

export interface ExpiryProgress {
  remote_media: number;
  thumbnails: number;
  previews: number;
  preview_images: number;
  reservations: number;
  invalidations: number;
  /** Blobs an interrupted purge had left in pending_blob_deletes, deleted now. */
  pending_blobs: number;
  blobs_deleted: number;
  bytes_freed: number;
}

type Step = (deps: ModerationDeps, ctx: TaskContext, prog: ExpiryProgress, now: number) => Promise<void>;

export function mediaExpiry(deps: ModerationDeps): TaskHandler {
  return async (ctx) => {
    const prog: ExpiryProgress = {
      remote_media: 0,
      thumbnails: 0,
      previews: 0,
      preview_images: 0,
      reservations: 0,
      invalidations: 0,
      pending_blobs: 0,
      blobs_deleted: 0,
      bytes_freed: 0,
      ...(ctx.task.progress as Partial<ExpiryProgress> | null),
    };
    const now = Date.now();
    const steps: Step[] = [expireRemoteMedia, expireThumbnails, expirePreviews, sweepTables, drainPending];
    for (const step of steps) {
      ctx.signal.throwIfAborted();
      await step(deps, ctx, prog, now);
      await ctx.saveProgress({ ...prog });
    }
    ctx.log.info('media expiry done', { ...prog });
  };
}

function cutoff(days: number, now: number): number | null {
  return days > 0 ? now - days * DAY_MS : null;
}

function addBlobs(prog: ExpiryProgress, done: { count: number; bytes: number }): void {
  prog.blobs_deleted += done.count;
  prog.bytes_freed += done.bytes;
}

/**
 * Purges the unpinned rows of a selection a batch at a time (keyset order); stops at the next
 * batch when the task is interrupted. Returns how many rows were purged.
 */
async function purgeBatches(
  deps: ModerationDeps,
  ctx: TaskContext,
  prog: ExpiryProgress,
  selection: MediaSelection,
  reason: string,
): Promise<number> {
  let purged = 0;
  let after: MediaKey | null = null;
  for (;;) {
    ctx.signal.throwIfAborted();
    const page = await mediaKeysPage(deps.db, { ...selection, withBlob: true }, after, PURGE_BATCH);
    if (page.length === 0) break;
    after = page[page.length - 1]!;
    const out = await purgeKeys(
      deps,
      page.filter((k) => !k.pinned),
      reason,
    );
    purged += out.purged.length;
    addBlobs(prog, { count: out.blobsDeleted, bytes: out.bytesFreed });
    if (page.length < PURGE_BATCH) break;
  }
  return purged;
}

// Step 1: remote media (downloads.expireAfterDays): rows of other servers created before the
//         cutoff; pinned rows are kept, quarantined ones stay as tombstones. A blob a local
//         row shares stays. One audit row per run that purged something.
const expireRemoteMedia: Step = async (deps, ctx, prog, now) => {
  const before = cutoff(deps.config().global.downloads.expireAfterDays, now);
  if (before === null) return;
  const n = await purgeBatches(
    deps,
    ctx,
    prog,
    { notOrigins: localOrigins(deps.config()), createdBefore: before },
    'expire_remote_media',
  );
  prog.remote_media += n;
  if (n > 0) {
    await recordAction(deps.db, deps.log, {
      actor: EXPIRY_ACTOR.userId,
      serverName: EXPIRY_ACTOR.serverName,
      action: 'expire_remote_media',
      target: `before ${before}`,
      details: { purged: n },
    });
  }
};

// Step 2: thumbnails (thumbnails.expireAfterDays, MMR read urlPreviews' value here): rows,
//         their pending deletes and the invalidation log entry in one transaction; every
//         cache forgets the media's thumbnail rows; then the blobs nothing refers to. The next
//         request for one makes it again.
const expireThumbnails: Step = async (deps, ctx, prog, now) => {
  const before = cutoff(deps.config().global.thumbnails.expireAfterDays, now);
  if (before === null) return;
  for (;;) {
    ctx.signal.throwIfAborted();
    const { media, freed } = await deps.db.tx(async (q) => {
      const out = await purgeThumbnailsBefore(q, before, PURGE_BATCH);
      await notePendingDeletes(q, out.freed);
      await logChange(q, changeOf(out.media, out.freed));
      return out;
    });
    deps.invalidator.announce(changeOf(media, freed));
    addBlobs(prog, await deleteUnreferenced(deps, freed));
    prog.thumbnails += freed.length; // one freed reference per deleted row
    if (freed.length < PURGE_BATCH) break;
  }
};

function changeOf(media: MediaKey[], freed: { sha256: string }[]) {
  return { media: media.map(mediaKeyString), hashes: [...new Set(freed.map((b) => b.sha256))] };
}

const MXC = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/;

/** The image a stored preview names, when it is media of the preview's own (local) homeserver. */
function imageOf(p: OldPreview, local: Set<string>): MediaKey | null {
  if (!p.json) return null;
  let image: unknown;
  try {
    image = (JSON.parse(p.json) as Record<string, unknown>)['og:image'];
  } catch {
    return null;
  }
  const m = typeof image === 'string' ? MXC.exec(image) : null;
  if (!m || m[1] !== p.serverName || !local.has(m[1])) return null;
  return { origin: m[1], mediaId: m[2]! };
}

// Step 3: URL previews (urlPreviews.expireAfterDays), with the images stored for them. Each
//         generated preview uploads its image as a new local media row, so an image mxc is
//         normally named by one row only; an image a newer (unexpired) row still names is kept.
//         Images are purged before their rows are deleted: a crash between the two leaves
//         rows whose images the next run finds already gone, never an image nobody will purge.
const expirePreviews: Step = async (deps, ctx, prog, now) => {
  const before = cutoff(deps.config().global.urlPreviews.expireAfterDays, now);
  if (before === null) return;
  const local = new Set(localOrigins(deps.config()));
  let images = 0;
  for (;;) {
    ctx.signal.throwIfAborted();
    const page = await oldPreviews(deps.db, before, PURGE_BATCH);
    if (page.length === 0) break;
    const keys = page.map((p) => imageOf(p, local)).filter((k): k is MediaKey => k !== null);
    const named = await imagesNamedSince(
      deps.db,
      keys.map((k) => `mxc://${mediaKeyString(k)}`),
      before,
    );
    const unnamed = keys.filter((k) => !named.has(`mxc://${mediaKeyString(k)}`));
    if (unnamed.length > 0) images += await purgeBatches(deps, ctx, prog, { keys: unnamed }, 'expire_preview');
    prog.previews += await deletePreviewRows(deps.db, page);
    if (page.length < PURGE_BATCH) break;
  }
  prog.preview_images += images;
  if (images > 0) {
    await recordAction(deps.db, deps.log, {
      actor: EXPIRY_ACTOR.userId,
      serverName: EXPIRY_ACTOR.serverName,
      action: 'expire_preview_images',
      target: `before ${before}`,
      details: { purged: images },
    });
  }
};

// Step 4: expired async-upload reservations, and invalidation log rows every instance has read.
//         Single statements over small tables (nothing is loaded).
const sweepTables: Step = async (deps, _ctx, prog, now) => {
  prog.reservations += await deleteExpiredReservations(deps.db, now);
  prog.invalidations += await sweepInvalidations(deps.db, now - INVALIDATION_KEEP_MS);
};

// Step 5: blobs a purge freed but did not get to delete (a crash, a stop), a batch at a time.
const drainPending: Step = async (deps, _ctx, prog) => {
  const done = await drainPendingDeletes(deps);
  prog.pending_blobs += done.count;
  addBlobs(prog, done);
};
