import { Errors } from '../../errors.js';
import { getMedia, lockHash } from '../../db/media.js';
import {
  blockHashes,
  blockScopes,
  flagHashes,
  FLEET_SCOPE,
  getPurpose,
  mediaKeysPage,
  unblockHash,
  unflagHash,
  type MediaSelection,
} from '../../db/moderation.js';
import { lockHashes } from '../../db/purge.js';
import type { MediaChange } from '../../cache/invalidation.js';
import { recordAction } from './audit.js';
import { logChange, mediaKeyString, type Actor, type ModerationDeps } from './moderation-deps.js';

// Quarantine is per hash: quarantining one mxc flags every row with the same bytes (on every
// homeserver for a repo admin, on its own for a local admin) and refuses those bytes from then
// on (quarantined_hashes). Pinned media is never flagged, and a pinned target blocks nothing.
// Each change takes the hash lock that uploads take, so an upload of the same bytes either
// commits before (and is flagged) or after (and is refused).

/** Keys read per batch of a user, room or server quarantine. */
export const QUARANTINE_BATCH = 1000;

function scopeOf(actor: Actor): string {
  return actor.scopeOrigin ?? FLEET_SCOPE;
}

function assertInScope(actor: Actor, origin: string): void {
  if (actor.scopeOrigin !== null && origin !== actor.scopeOrigin) {
    throw Errors.forbidden(`A local admin of ${actor.scopeOrigin} may only act on media of ${actor.scopeOrigin}`);
  }
}

// Step 1: the target row (404 when unknown); the actor must be allowed its origin.
// Step 2: under the hash lock: a pinned target stops here; else flag the hash's rows in scope
//         and block the hash, logging the change and the action in the same transaction.
// Step 3: every cache forgets (here at once, other instances through the channel and log).
export async function quarantineMedia(
  deps: ModerationDeps,
  actor: Actor,
  target: { origin: string; mediaId: string },
): Promise<{ numQuarantined: number }> {
  assertInScope(actor, target.origin);
  const { change, count } = await deps.db.tx(async (q) => {
    const row = await getMedia(q, target.origin, target.mediaId);
    if (!row) throw Errors.notFound();
    await lockHash(q, row.sha256);
    if ((await getPurpose(q, target.origin, target.mediaId)) === 'pinned') {
      await recordAction(q, deps.log, {
        actor: actor.userId,
        serverName: actor.serverName,
        action: 'quarantine_media',
        target: `mxc://${mediaKeyString(target)}`,
        details: { num_quarantined: 0, skipped: 'pinned' },
      });
      return { change: { media: [], hashes: [] } as MediaChange, count: 0 };
    }
    const flagged = await flagHashes(q, [row.sha256], actor.scopeOrigin, actor.userId);
    await blockHashes(q, [row.sha256], scopeOf(actor), actor.userId);
    const change: MediaChange = { media: flagged.map(mediaKeyString), hashes: [row.sha256] };
    await logChange(q, change);
    await recordAction(q, deps.log, {
      actor: actor.userId,
      serverName: actor.serverName,
      action: 'quarantine_media',
      target: `mxc://${mediaKeyString(target)}`,
      details: { num_quarantined: flagged.length, sha256: row.sha256, scope: scopeOf(actor) },
    });
    return { change, count: flagged.length };
  });
  deps.invalidator.announce(change);
  return { numQuarantined: count };
}

/**
 * Quarantines every hash of a selection (a user's uploads, a server's media, a room's list),
 * a batch of keys at a time so a user with 100,000 uploads never sits in memory at once.
 */
export async function quarantineSelection(
  deps: ModerationDeps,
  actor: Actor,
  what: { action: string; target: string; selection: MediaSelection },
): Promise<{ numQuarantined: number }> {
  const selection: MediaSelection = actor.scopeOrigin
    ? { ...what.selection, origin: actor.scopeOrigin }
    : what.selection;
  let after: { origin: string; mediaId: string } | null = null;
  let total = 0;
  for (;;) {
    const page = await mediaKeysPage(deps.db, selection, after, QUARANTINE_BATCH);
    if (page.length === 0) break;
    after = page[page.length - 1]!;
    const hashes = [...new Set(page.filter((k) => !k.pinned).map((k) => k.sha256))];
    total += await quarantineHashes(deps, actor, hashes);
    if (page.length < QUARANTINE_BATCH) break;
  }
  await recordAction(deps.db, deps.log, {
    actor: actor.userId,
    serverName: actor.serverName,
    action: what.action,
    target: what.target,
    details: { num_quarantined: total, scope: scopeOf(actor) },
  });
  return { numQuarantined: total };
}

async function quarantineHashes(deps: ModerationDeps, actor: Actor, hashes: string[]): Promise<number> {
  if (hashes.length === 0) return 0;
  const change = await deps.db.tx(async (q) => {
    await lockHashes(q, hashes);
    const flagged = await flagHashes(q, hashes, actor.scopeOrigin, actor.userId);
    await blockHashes(q, hashes, scopeOf(actor), actor.userId);
    const c: MediaChange = { media: flagged.map(mediaKeyString), hashes };
    await logChange(q, c);
    return c;
  });
  deps.invalidator.announce(change);
  return change.media.length;
}

// Step 1: the target row; the actor must be allowed its origin.
// Step 2: under the hash lock: a local admin cannot lift a repo admin's fleet-wide block; lift
//         the block in scope and clear the rows' flags. Tombstones (blob purged) cannot serve
//         again: they are deleted, and their local IDs stay reserved.
// Step 3: every cache forgets.
export async function unquarantineMedia(
  deps: ModerationDeps,
  actor: Actor,
  target: { origin: string; mediaId: string },
): Promise<{ numUnquarantined: number }> {
  assertInScope(actor, target.origin);
  const { change, count } = await deps.db.tx(async (q) => {
    const row = await getMedia(q, target.origin, target.mediaId);
    if (!row) throw Errors.notFound();
    await lockHash(q, row.sha256);
    const scopes = await blockScopes(q, row.sha256);
    if (actor.scopeOrigin !== null && scopes.includes(FLEET_SCOPE)) {
      throw Errors.forbidden('This media was quarantined by a repository admin');
    }
    await unblockHash(q, row.sha256, actor.scopeOrigin);
    const { restored, tombstones } = await unflagHash(q, row.sha256, actor.scopeOrigin);
    // Tombstones' local IDs were reserved when their blob was purged (purgeMediaRows).
    const c: MediaChange = { media: [...restored, ...tombstones].map(mediaKeyString), hashes: [row.sha256] };
    await logChange(q, c);
    await recordAction(q, deps.log, {
      actor: actor.userId,
      serverName: actor.serverName,
      action: 'unquarantine_media',
      target: `mxc://${mediaKeyString(target)}`,
      details: { num_unquarantined: restored.length, tombstones_removed: tombstones.length, sha256: row.sha256 },
    });
    return { change: c, count: restored.length };
  });
  deps.invalidator.announce(change);
  return { numUnquarantined: count };
}
