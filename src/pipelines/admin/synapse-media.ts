import { Errors } from '../../errors.js';
import type { DomainConfig } from '../../config/schema.js';
import type { Logger } from '../../logging/logger.js';
import {
  synapseMediaRow,
  userMediaPage,
  type SynapseMediaRow,
  type UserMediaOrder,
  type UserMediaQuery,
} from '../../db/synapse-media.js';
import type { RoleDeps } from '../roles.js';
import { purgeSelection, type PurgeResult } from './purge.js';
import { localOrigins, type Actor, type MediaSelection, type ModerationDeps } from './moderation-deps.js';

// Synapse's media admin API over our quarantine, purge and attribute pipelines. Synapse speaks
// for one homeserver, so here "local" is the request's Host: deletions and user listings name
// it, remote media is everything that is none of our homeservers. What Synapse keeps we keep:
// protected (pinned) media always, quarantined media on the bulk deletes, and with
// keep_profiles the users' avatars, which only the homeserver knows.

export type { SynapseMediaRow, UserMediaOrder, UserMediaQuery };

/** What a Synapse delete answers: media IDs (not mxc URIs), and how many in all. */
export interface Deleted {
  /** At most AFFECTED_LIMIT of them (see purge.ts); `total` counts all. */
  mediaIds: string[];
  total: number;
}

function deletedOf(r: PurgeResult): Deleted {
  return { mediaIds: r.affected.map((mxc) => mxc.slice(mxc.lastIndexOf('/') + 1)), total: r.total };
}

function assertLocal(origin: string, host: string): void {
  if (origin.toLowerCase() !== host.toLowerCase()) throw Errors.invalidParam('Can only delete local media');
}

// ---- Query one media ----

// Step 1: a local admin reads its own homeserver's media and the shared remote cache, not
//         another of our homeservers' media.
// Step 2: the row (404 when neither uploaded here nor cached).
export async function synapseMediaInfo(
  deps: ModerationDeps,
  actor: Actor,
  target: { origin: string; mediaId: string },
): Promise<SynapseMediaRow> {
  const ours = localOrigins(deps.config()).includes(target.origin);
  if (actor.scopeOrigin !== null && ours && target.origin !== actor.scopeOrigin) {
    throw Errors.forbidden(`A local admin of ${actor.scopeOrigin} may only look at media of ${actor.scopeOrigin}`);
  }
  const row = await synapseMediaRow(deps.db, target.origin, target.mediaId);
  if (!row) throw Errors.notFound(ours ? 'Unknown media' : 'Remote media is not cached here');
  return row;
}

// ---- Delete one local media ----

// Step 1: local media only (the Host's), and known with its blob (a tombstone is gone already).
// Step 2: protected media is refused rather than silently kept: the admin asked for this one.
// Step 3: purge it (a quarantined row stays as a tombstone; the ID stays reserved).
export async function deleteLocalMedia(
  deps: ModerationDeps,
  actor: Actor,
  r: { origin: string; mediaId: string; host: string },
): Promise<Deleted> {
  assertLocal(r.origin, r.host);
  const row = await synapseMediaRow(deps.db, r.origin, r.mediaId);
  if (!row || row.location === '') throw Errors.notFound('Unknown media');
  if (row.pinned) throw Errors.forbidden('This media is protected: unprotect it before deleting it');
  const out = await purgeSelection(deps, actor, {
    action: 'synapse_delete_media',
    target: `mxc://${r.origin}/${r.mediaId}`,
    selection: { keys: [{ origin: r.origin, mediaId: r.mediaId }] },
  });
  return deletedOf(out);
}

// ---- Delete local media by date and size ----

export interface DeleteByDateRequest {
  origin: string;
  host: string;
  beforeTs: number;
  sizeGt: number;
  keepProfiles: boolean;
  /** The caller: its token asks the homeserver for the avatars (keep_profiles). */
  userId: string;
  token: string;
  domain: DomainConfig;
  remoteAddress: string;
  log: Logger;
}

// Step 1: local media only.
// Step 2: keep_profiles: every user's avatar, from the homeserver (Synapse's admin API, with
//         the caller's token), kept; where it cannot be asked, the operator must opt out.
// Step 3: purge the Host's unprotected, unquarantined media created before before_ts and larger
//         than size_gt (we keep no access times: creation stands in for Synapse's last access).
export async function deleteLocalMediaBefore(
  deps: ModerationDeps,
  roles: RoleDeps,
  actor: Actor,
  r: DeleteByDateRequest,
): Promise<Deleted> {
  assertLocal(r.origin, r.host);
  const avatars = r.keepProfiles ? await step2Avatars(roles, r) : [];
  const selection: MediaSelection = {
    origin: r.origin,
    createdBefore: r.beforeTs,
    sizeGreaterThan: r.sizeGt,
    quarantined: false,
    ...(avatars.length > 0 ? { exceptKeys: avatars } : {}),
  };
  const out = await purgeSelection(deps, actor, {
    action: 'synapse_delete_media_before',
    target: `${r.origin} before ${r.beforeTs}`,
    selection,
  });
  return deletedOf(out);
}

/** The avatars of the origin's users, as `origin/mediaId`. */
async function step2Avatars(roles: RoleDeps, r: DeleteByDateRequest): Promise<string[]> {
  const optOut = 'or pass keep_profiles=false to delete avatars along with the rest';
  if (r.domain.homeserver.adminApiKind !== 'synapse') {
    throw Errors.invalidParam(
      `keep_profiles needs the homeserver's user list, which only Synapse's admin API gives ` +
        `(homeservers[].adminApiKind is '${r.domain.homeserver.adminApiKind}'): set adminApiKind: synapse, ${optOut}`,
    );
  }
  if (r.userId === '@sharedsecret' || r.token === '') {
    throw Errors.invalidParam(
      `keep_profiles needs a homeserver admin's access token to list the users' avatars, not the shared secret: use one, ${optOut}`,
    );
  }
  const urls = await roles.homeserver.userAvatars(r.domain.homeserver, r.token, {
    timeoutMs: r.domain.timeouts.clientServerTimeoutSeconds * 1000,
    forwardedFor: r.remoteAddress,
    log: r.log,
  });
  const prefix = `mxc://${r.origin}/`;
  return [...urls].filter((u) => u.startsWith(prefix)).map((u) => u.slice('mxc://'.length));
}

// ---- Purge the remote media cache ----

/** Remote media created before before_ts; quarantined copies stay (Synapse keeps them too). */
export async function purgeRemoteCache(deps: ModerationDeps, actor: Actor, beforeTs: number): Promise<number> {
  const out = await purgeSelection(deps, actor, {
    action: 'synapse_purge_media_cache',
    target: `before ${beforeTs}`,
    selection: { notOrigins: localOrigins(deps.config()), createdBefore: beforeTs, quarantined: false },
  });
  return out.total;
}

// ---- A user's media ----

function assertLocalUser(origin: string, host: string): void {
  if (origin.toLowerCase() !== host.toLowerCase()) throw Errors.invalidParam('Can only look up local users');
}

/** One page of the user's uploads, Synapse's order, and the total. */
export function userMedia(
  deps: ModerationDeps,
  q: UserMediaQuery & { host: string },
): Promise<{ rows: SynapseMediaRow[]; total: number }> {
  assertLocalUser(q.origin, q.host);
  return userMediaPage(deps.db, q);
}

// Step 1: the page Synapse's parameters name (the same as the listing's).
// Step 2: purge those media, protected ones kept. No next_token: what remains has moved up.
export async function deleteUserMedia(
  deps: ModerationDeps,
  actor: Actor,
  q: UserMediaQuery & { host: string },
): Promise<Deleted> {
  assertLocalUser(q.origin, q.host);
  const { rows } = await userMediaPage(deps.db, q);
  if (rows.length === 0) return { mediaIds: [], total: 0 };
  const out = await purgeSelection(deps, actor, {
    action: 'synapse_delete_user_media',
    target: q.userId,
    selection: {
      origin: q.origin,
      userId: q.userId,
      keys: rows.map((m) => ({ origin: m.origin, mediaId: m.mediaId })),
    },
  });
  return deletedOf(out);
}
