import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import type { Ctx } from '../services.js';

/**
 * GET /_matrix/client/versions, proxied from the homeserver with v1.11 added: clients only
 * use the authenticated media endpoints (which we serve) when v1.11 is advertised.
 */
export async function versionsHandler(ctx: Ctx): Promise<Result> {
  const r = await ctx.svc.homeserver.proxyJson(ctx.domain.homeserver, 'GET', '_matrix/client/versions', null, {
    timeoutMs: ctx.domain.timeouts.clientServerTimeoutSeconds * 1000,
    forwardedFor: ctx.req.remoteAddress,
    log: ctx.log,
  });
  if (r.status !== 200) throw Errors.badGateway(`Homeserver answered /versions with HTTP ${r.status}`);
  const versions = Array.isArray(r.body.versions)
    ? (r.body.versions as unknown[]).filter((v) => typeof v === 'string')
    : [];
  if (!versions.includes('v1.11')) versions.push('v1.11');
  return json({ ...r.body, versions });
}
