import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { quarantineMedia, unquarantineMedia } from '../../pipelines/admin/quarantine.js';
import { setMediaPurpose } from '../../pipelines/admin/attributes.js';
import {
  deleteLocalMedia,
  deleteLocalMediaBefore,
  purgeRemoteCache,
  synapseMediaInfo,
  type Deleted,
} from '../../pipelines/admin/synapse-media.js';
import { booleanParam, mediaIdParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { actorOf } from './actor.js';
import { drainBody } from './json-body.js';
import { quarantineRoomHandler, quarantineUserHandler } from './quarantine.js';

// Synapse's media admin API (/_synapse/admin/v1/media/..., purge_media_cache, the room and user
// quarantines) in Synapse's request and response shapes, so its admin tools work against us.
// The callers are the homeserver's admins: a local admin of the Host, or a repo admin. As in
// Synapse, the role is checked before the parameters. Users' media: synapse-users.ts.

export function synapseActor(ctx: Ctx) {
  return actorOf(ctx, { localAdmins: true, what: "use Synapse's media admin API" });
}

function quarantineActor(ctx: Ctx) {
  return actorOf(ctx, { localAdmins: ctx.domain.quarantine.allowLocalAdmins, what: 'quarantine media' });
}

function target(ctx: Ctx) {
  return { origin: serverNameParam(ctx.params.serverName), mediaId: mediaIdParam(ctx.params.mediaId) };
}

export function deletedAnswer(d: Deleted): Result {
  return json({ deleted_media: d.mediaIds, total: d.total });
}

// ---- Quarantine and protection: Synapse answers {} ----

export async function synapseQuarantineHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  const actor = await quarantineActor(ctx);
  // Protected media is left alone and still answers {} (as Synapse does).
  await quarantineMedia(ctx.svc.moderation, actor, target(ctx));
  return json({});
}

export async function synapseUnquarantineHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  const actor = await quarantineActor(ctx);
  await unquarantineMedia(ctx.svc.moderation, actor, target(ctx));
  return json({});
}

/** room/{roomId}/media/quarantine and quarantine_media/{roomId}: MMR's handler already answers
 * Synapse's {"num_quarantined": N}. */
export async function synapseQuarantineRoomHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  return quarantineRoomHandler(ctx);
}

/** user/{userId}/media/quarantine: the user's uploads to its own server, {"num_quarantined": N}. */
export async function synapseQuarantineUserHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  return quarantineUserHandler(ctx);
}

/** media/protect/{mediaId} and media/unprotect/{mediaId}: the Host's media; protect is our 'pinned'. */
export async function synapseProtectHandler(ctx: Ctx, protect: boolean): Promise<Result> {
  await drainBody(ctx);
  const actor = await synapseActor(ctx);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  await setMediaPurpose(ctx.svc.moderation, actor, { origin: ctx.serverName, mediaId }, protect ? 'pinned' : 'none');
  return json({});
}

// ---- Query one media ----

export async function synapseMediaInfoHandler(ctx: Ctx): Promise<Result> {
  const actor = await synapseActor(ctx);
  const m = await synapseMediaInfo(ctx.svc.moderation, actor, target(ctx));
  return json({
    media_info: {
      media_origin: m.origin,
      // Remote media has no uploader here (Synapse answers null too).
      user_id: m.userId === '' ? null : m.userId,
      media_id: m.mediaId,
      // A type-less upload is served as application/octet-stream: that is its type.
      media_type: m.contentType ?? 'application/octet-stream',
      media_length: m.sizeBytes,
      upload_name: m.uploadName,
      created_ts: m.creationTs,
      // Where the bytes lie in their datastore (Synapse's file name on disk); null once purged.
      filesystem_id: m.location === '' ? null : m.location,
      // URL-preview images are stored as the requester's media, but not which URL they came from.
      url_cache: null,
      // We keep no access times: the creation time is the last access we know of, and what
      // media/delete's before_ts compares (Synapse compares the last access).
      last_access_ts: m.creationTs,
      quarantined_by: m.quarantinedBy,
      // Synapse's flag for media stored after the MSC3916 freeze: our requires_auth.
      authenticated: m.requiresAuth,
      safe_from_quarantine: m.pinned,
      sha256: m.sha256,
    },
  });
}

// ---- Deletion ----

/** DELETE media/{serverName}/{mediaId}: the Host's media only. */
export async function synapseDeleteMediaHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  const actor = await synapseActor(ctx);
  const { origin, mediaId } = target(ctx);
  return deletedAnswer(await deleteLocalMedia(ctx.svc.moderation, actor, { origin, mediaId, host: ctx.serverName }));
}

/** Synapse rejects a before_ts small enough to be seconds: an operator's script that sends
 * seconds would otherwise delete nothing and look as if it worked. */
const SECONDS_LOOK_LIKE = 30_000_000_000;

export function synapseBeforeTs(v: string | null): number {
  if (v === null || v === '') throw Errors.missingParam('before_ts: required (milliseconds since the epoch)');
  if (!/^\d{1,16}$/.test(v)) {
    throw Errors.invalidParam(`before_ts: expected a positive integer (milliseconds), got '${v.slice(0, 32)}'`);
  }
  const n = Number(v);
  if (n < SECONDS_LOOK_LIKE) {
    throw Errors.invalidParam(`before_ts: ${n} ms is in 1970: was it given in seconds? Send milliseconds`);
  }
  return n;
}

function sizeGtParam(v: string | null): number {
  if (v === null || v === '') return 0;
  if (!/^\d{1,16}$/.test(v))
    throw Errors.invalidParam(`size_gt: expected a non-negative integer, got '${v.slice(0, 32)}'`);
  return Number(v);
}

/** POST media/delete and media/{serverName}/delete: the Host's old media, avatars kept by default. */
export async function synapseDeleteByDateHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  const actor = await synapseActor(ctx);
  const q = ctx.req.query;
  const origin = ctx.params.serverName === undefined ? ctx.serverName : serverNameParam(ctx.params.serverName);
  const beforeTs = synapseBeforeTs(q.get('before_ts'));
  const sizeGt = sizeGtParam(q.get('size_gt'));
  const keepProfiles = booleanParam('keep_profiles', q.get('keep_profiles')) ?? true;
  const out = await deleteLocalMediaBefore(ctx.svc.moderation, ctx.svc.roles, actor, {
    origin,
    host: ctx.serverName,
    beforeTs,
    sizeGt,
    keepProfiles,
    userId: ctx.user!.userId,
    token: ctx.user!.token,
    domain: ctx.domain,
    remoteAddress: ctx.req.remoteAddress,
    log: ctx.log,
  });
  return deletedAnswer(out);
}

/**
 * purge_media_cache: remote media is one cache shared by every homeserver this repo serves, so
 * only a repo admin may empty it (as MMR's purge/remote); a local admin gets a 403 that says
 * why rather than a purge of nothing.
 */
export async function synapsePurgeMediaCacheHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  const actor = await actorOf(ctx, {
    localAdmins: false,
    what: 'purge the remote media cache, which every homeserver of this media repo shares',
  });
  const beforeTs = synapseBeforeTs(ctx.req.query.get('before_ts'));
  return json({ deleted: await purgeRemoteCache(ctx.svc.moderation, actor, beforeTs) });
}
