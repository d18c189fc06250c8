import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { purgeOne, purgeSelection, type PurgeResult } from '../../pipelines/admin/purge.js';
import { localOrigins, type MediaSelection } from '../../pipelines/admin/moderation-deps.js';
import { roomKeys } from './room-keys.js';
import { callerIsLocalAdmin } from '../auth.js';
import { booleanParam, mediaIdParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { actorOf, assertServerInScope, beforeTsParam, roomIdParam, userIdParam } from './actor.js';
import { drainBody } from './json-body.js';

// MMR's purge endpoints (POST …/admin/purge/…), the uploader's DELETE …/download/{server}/{id},
// and the Synapse-compatible purge_media_cache alias. Answers are MMR's shapes; `total` says how
// many were purged when `affected` (capped) does not list them all.

function answer(r: PurgeResult) {
  return { purged: true, affected: r.affected, total: r.total };
}

async function run(ctx: Ctx, localAdmins: boolean, action: string, target: string, selection: MediaSelection) {
  await drainBody(ctx);
  const actor = await actorOf(ctx, { localAdmins, what: 'purge media' });
  return { actor, result: await purgeSelection(ctx.svc.moderation, actor, { action, target, selection }) };
}

/** purge/remote and purge_media_cache: cached remote media created before before_ts. */
export async function purgeRemoteHandler(ctx: Ctx): Promise<Result> {
  const before = beforeTsParam(ctx.req.query.get('before_ts'));
  const { result } = await run(ctx, false, 'purge_remote', `before ${before}`, {
    notOrigins: localOrigins(ctx.svc.config()),
    createdBefore: before,
  });
  return json({ total_removed: result.total });
}

/** purge/old: media created before before_ts (default now), remote only unless include_local. */
export async function purgeOldHandler(ctx: Ctx): Promise<Result> {
  const before = beforeTsParam(ctx.req.query.get('before_ts'), Date.now());
  const includeLocal = booleanParam('include_local', ctx.req.query.get('include_local')) ?? false;
  const { result } = await run(ctx, false, 'purge_old', `before ${before}`, {
    createdBefore: before,
    ...(includeLocal ? {} : { notOrigins: localOrigins(ctx.svc.config()) }),
  });
  return json(answer(result));
}

/** purge/quarantined: quarantined media's blobs; the rows stay as tombstones. */
export async function purgeQuarantinedHandler(ctx: Ctx): Promise<Result> {
  const { result } = await run(ctx, true, 'purge_quarantined', 'quarantined', { quarantined: true });
  return json(answer(result));
}

export async function purgeUserHandler(ctx: Ctx): Promise<Result> {
  const { userId, server } = userIdParam(ctx.params.userId);
  const before = beforeTsParam(ctx.req.query.get('before_ts'), Date.now());
  await drainBody(ctx);
  const actor = await actorOf(ctx, { localAdmins: true, what: 'purge media' });
  assertServerInScope(actor, server);
  const result = await purgeSelection(ctx.svc.moderation, actor, {
    action: 'purge_user',
    target: userId,
    selection: { origin: server, userId, createdBefore: before },
  });
  return json(answer(result));
}

export async function purgeServerHandler(ctx: Ctx): Promise<Result> {
  const server = serverNameParam(ctx.params.serverName);
  const before = beforeTsParam(ctx.req.query.get('before_ts'), Date.now());
  await drainBody(ctx);
  const actor = await actorOf(ctx, { localAdmins: true, what: 'purge media' });
  assertServerInScope(actor, server);
  const result = await purgeSelection(ctx.svc.moderation, actor, {
    action: 'purge_server',
    target: server,
    selection: { origin: server, createdBefore: before },
  });
  return json(answer(result));
}

/** purge/room: the room's media as its homeserver lists it, created before before_ts (MMR
 * parsed before_ts but ignored it). */
export async function purgeRoomHandler(ctx: Ctx): Promise<Result> {
  const roomId = roomIdParam(ctx.params.roomId);
  const before = beforeTsParam(ctx.req.query.get('before_ts'), Date.now());
  await drainBody(ctx);
  const actor = await actorOf(ctx, { localAdmins: true, what: 'purge media' });
  const result = await purgeSelection(ctx.svc.moderation, actor, {
    action: 'purge_room',
    target: roomId,
    selection: { keys: await roomKeys(ctx, roomId), createdBefore: before },
  });
  return json(answer(result));
}

/** purge/{server}/{id} and DELETE download/{server}/{id}: the uploader, a local admin or a repo admin. */
export async function purgeOneHandler(ctx: Ctx): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  await drainBody(ctx);
  const user = ctx.user;
  if (!user) throw Errors.missingToken();
  const out = await purgeOne(ctx.svc.moderation, {
    origin,
    mediaId,
    userId: user.userId,
    serverName: ctx.serverName,
    repoAdmin: user.isRepoAdmin,
    localAdmin: () => callerIsLocalAdmin(ctx),
  });
  return json(out);
}
