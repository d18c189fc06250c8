import { Errors } from '../../errors.js';
import { getMedia } from '../../db/media.js';
import { getPurpose, setPurpose, type MediaPurpose } from '../../db/moderation.js';
import { recordAction } from './audit.js';
import type { Actor, ModerationDeps } from './moderation-deps.js';

// MMR's media attributes: purpose 'pinned' protects media from quarantine and purge (Synapse
// calls it protect / safe_from_quarantine); 'none' is the default.

export type { MediaPurpose };

function assertAllowed(actor: Actor, origin: string): void {
  if (actor.scopeOrigin !== null && actor.scopeOrigin !== origin) {
    throw Errors.forbidden(`A local admin of ${actor.scopeOrigin} may only act on media of ${actor.scopeOrigin}`);
  }
}

export async function mediaPurpose(
  deps: ModerationDeps,
  actor: Actor,
  target: { origin: string; mediaId: string },
): Promise<MediaPurpose> {
  assertAllowed(actor, target.origin);
  if (!(await getMedia(deps.db, target.origin, target.mediaId))) throw Errors.notFound();
  return getPurpose(deps.db, target.origin, target.mediaId);
}

export async function setMediaPurpose(
  deps: ModerationDeps,
  actor: Actor,
  target: { origin: string; mediaId: string },
  purpose: MediaPurpose,
): Promise<void> {
  assertAllowed(actor, target.origin);
  await deps.db.tx(async (q) => {
    if (!(await getMedia(q, target.origin, target.mediaId))) throw Errors.notFound();
    await setPurpose(q, target.origin, target.mediaId, purpose);
    await recordAction(q, deps.log, {
      actor: actor.userId,
      serverName: actor.serverName,
      action: 'set_attributes',
      target: `mxc://${target.origin}/${target.mediaId}`,
      details: { purpose },
    });
  });
}
