import { json, type Result } from '../../http/types.js';
import { readSmallBody } from '../../http/body.js';
import type { Ctx } from '../services.js';

/**
 * POST /_matrix/client/{r0,v3}/logout[/all]: passed to the homeserver, then the token (or
 * every token of the user) is dropped from our cache so it stops working here at once.
 */
export async function logoutHandler(ctx: Ctx, all: boolean): Promise<Result> {
  if (ctx.req.body) await readSmallBody(ctx.req.body, 64 * 1024).catch(() => undefined);
  const version = ctx.req.path.startsWith('/_matrix/client/r0/') ? 'r0' : 'v3';
  const r = await ctx.svc.homeserver.proxyJson(ctx.domain.homeserver, 'POST', `_matrix/client/${version}/logout${all ? '/all' : ''}`,
    ctx.user!.token, { timeoutMs: ctx.domain.timeouts.clientServerTimeoutSeconds * 1000, forwardedFor: ctx.req.remoteAddress, log: ctx.log }, '{}');
  if (r.status === 200) {
    if (all) ctx.svc.tokens.dropUser(ctx.serverName, ctx.user!.userId);
    else ctx.svc.tokens.dropToken(ctx.serverName, ctx.user!.token);
  }
  return json(r.body, r.status);
}
