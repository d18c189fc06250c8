import { json, type Result } from '../../http/types.js';
import { readSmallBody } from '../../http/body.js';
import { logout } from '../../pipelines/access-token.js';
import type { Ctx } from '../services.js';

/** POST /_matrix/client/{r0,v3}/logout[/all], passed to the homeserver (see pipelines/access-token). */
export async function logoutHandler(ctx: Ctx, all: boolean): Promise<Result> {
  if (ctx.req.body) await readSmallBody(ctx.req.body, 64 * 1024).catch(() => undefined);
  const version = ctx.req.path.startsWith('/_matrix/client/r0/') ? 'r0' : 'v3';
  const r = await logout(ctx.svc.auth, {
    user: ctx.user!,
    all,
    version,
    serverName: ctx.serverName,
    domain: ctx.domain,
    remoteAddress: ctx.req.remoteAddress,
    log: ctx.log,
  });
  return json(r.body, r.status);
}
