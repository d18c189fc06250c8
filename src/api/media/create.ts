import { Errors, MatrixError } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { readSmallBody } from '../../http/body.js';
import { insertReservation, pendingForUser } from '../../db/reservations.js';
import { newMediaId } from '../../matrix/ids.js';
import type { Ctx } from '../services.js';

/** POST /_matrix/media/v1/create (MSC2246): reserve an mxc for a later PUT. */
export async function createHandler(ctx: Ctx): Promise<Result> {
  // The body is empty or `{}`; read it (bounded) so the connection stays usable.
  if (ctx.req.body) await readSmallBody(ctx.req.body, 64 * 1024).catch(() => undefined);
  const { maxPending, maxAgeSeconds } = ctx.domain.uploads;
  const userId = ctx.user!.userId;
  const now = Date.now();
  if (maxPending > 0) {
    const pending = await pendingForUser(ctx.svc.db, ctx.serverName, userId, now);
    if (pending.length >= maxPending) {
      throw Errors.limitExceeded(`Too many pending uploads (${pending.length} of ${maxPending}); finish or let one expire`,
        pending[0]!.expiresTs - now);
    }
  }
  const expiresTs = now + maxAgeSeconds * 1000;
  for (let attempt = 0; attempt < 5; attempt++) {
    const mediaId = newMediaId();
    if (await insertReservation(ctx.svc.db, { origin: ctx.serverName, mediaId, userId, createdTs: now, expiresTs })) {
      return json({ content_uri: `mxc://${ctx.serverName}/${mediaId}`, unused_expires_at: expiresTs });
    }
  }
  throw new MatrixError('M_UNKNOWN', 500, 'Could not allocate a media ID');
}
