import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { quarantineMedia, quarantineSelection, unquarantineMedia } from '../../pipelines/admin/quarantine.js';
import { roomKeys } from './room-keys.js';
import { mediaPurpose, setMediaPurpose } from '../../pipelines/admin/attributes.js';
import { readJsonBody } from './json-body.js';
import { mediaIdParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { actorOf, assertServerInScope, roomIdParam, userIdParam } from './actor.js';

// MMR's quarantine endpoints (POST …/admin/quarantine/…), plus an unquarantine MMR lacks.
// quarantine.allowLocalAdmins (per homeserver) lets that homeserver's admins act on its media.

function quarantineActor(ctx: Ctx) {
  return actorOf(ctx, { localAdmins: ctx.domain.quarantine.allowLocalAdmins, what: 'quarantine media' });
}

function target(ctx: Ctx) {
  return { origin: serverNameParam(ctx.params.serverName), mediaId: mediaIdParam(ctx.params.mediaId) };
}

export async function quarantineMediaHandler(ctx: Ctx): Promise<Result> {
  const actor = await quarantineActor(ctx);
  const out = await quarantineMedia(ctx.svc.moderation, actor, target(ctx));
  return json({ num_quarantined: out.numQuarantined });
}

export async function unquarantineMediaHandler(ctx: Ctx): Promise<Result> {
  const actor = await quarantineActor(ctx);
  const out = await unquarantineMedia(ctx.svc.moderation, actor, target(ctx));
  return json({ num_unquarantined: out.numUnquarantined });
}

export async function quarantineUserHandler(ctx: Ctx): Promise<Result> {
  const actor = await quarantineActor(ctx);
  const { userId, server } = userIdParam(ctx.params.userId);
  assertServerInScope(actor, server);
  const out = await quarantineSelection(ctx.svc.moderation, actor, {
    action: 'quarantine_user',
    target: userId,
    selection: { origin: server, userId },
  });
  return json({ num_quarantined: out.numQuarantined });
}

export async function quarantineServerHandler(ctx: Ctx): Promise<Result> {
  const actor = await quarantineActor(ctx);
  const server = serverNameParam(ctx.params.serverName);
  assertServerInScope(actor, server);
  const out = await quarantineSelection(ctx.svc.moderation, actor, {
    action: 'quarantine_server',
    target: server,
    selection: { origin: server },
  });
  return json({ num_quarantined: out.numQuarantined });
}

export async function quarantineRoomHandler(ctx: Ctx): Promise<Result> {
  const actor = await quarantineActor(ctx);
  const roomId = roomIdParam(ctx.params.roomId);
  // One selection however long the list: it is read back a batch of keys at a time.
  const out = await quarantineSelection(ctx.svc.moderation, actor, {
    action: 'quarantine_room',
    target: roomId,
    selection: { keys: await roomKeys(ctx, roomId) },
  });
  return json({ num_quarantined: out.numQuarantined });
}

export async function attributesHandler(ctx: Ctx): Promise<Result> {
  const actor = await actorOf(ctx, { localAdmins: true, what: 'change media attributes' });
  if (ctx.req.method === 'GET') return json({ purpose: await mediaPurpose(ctx.svc.moderation, actor, target(ctx)) });
  const body = await readJsonBody(ctx);
  const purpose = body.purpose;
  if (purpose !== 'none' && purpose !== 'pinned') {
    throw Errors.invalidParam(`purpose: expected 'none' or 'pinned', got ${JSON.stringify(purpose)?.slice(0, 32)}`);
  }
  await setMediaPurpose(ctx.svc.moderation, actor, target(ctx), purpose);
  return json({ purpose });
}
