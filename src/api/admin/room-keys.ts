import { roomMediaKeys, type MediaKey } from '../../pipelines/admin/room-media.js';
import type { Ctx } from '../services.js';

/** The room's media as its homeserver lists it, asked with the caller's token. */
export function roomKeys(ctx: Ctx, roomId: string): Promise<MediaKey[]> {
  return roomMediaKeys(ctx.svc.roles, {
    roomId,
    userId: ctx.user!.userId,
    token: ctx.user!.token,
    domain: ctx.domain,
    remoteAddress: ctx.req.remoteAddress,
    log: ctx.log,
  });
}
