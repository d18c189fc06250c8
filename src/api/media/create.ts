import { json, type Result } from '../../http/types.js';
import { readSmallBody } from '../../http/body.js';
import { reserveMediaId } from '../../pipelines/upload-async.js';
import type { Ctx } from '../services.js';

/** POST /_matrix/media/v1/create (MSC2246): reserve an mxc for a later PUT. */
export async function createHandler(ctx: Ctx): Promise<Result> {
  // The body is empty or `{}`; read it (bounded) so the connection stays usable.
  if (ctx.req.body) await readSmallBody(ctx.req.body, 64 * 1024).catch(() => undefined);
  const { mxc, expiresTs } = await reserveMediaId(ctx.svc.upload, {
    origin: ctx.serverName,
    userId: ctx.user!.userId,
    domain: ctx.domain,
  });
  return json({ content_uri: mxc, unused_expires_at: expiresTs });
}
