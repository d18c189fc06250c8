import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { getMedia } from '../../db/media.js';
import { getReservation } from '../../db/reservations.js';
import { uploadMedia, type UploadInput } from '../../pipelines/upload.js';
import { afterUpload } from '../../pipelines/upload-images.js';
import { contentTypeHeader, filenameParam, mediaIdParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';

function uploadInput(ctx: Ctx): Omit<UploadInput, 'reservedMediaId'> {
  const body = ctx.req.body;
  if (!body) throw Errors.missingParam('A request body is required');
  const g = ctx.svc.config().global;
  return {
    origin: ctx.serverName,
    userId: ctx.user!.userId,
    uploadName: filenameParam(ctx.req.query.get('filename')),
    contentType: contentTypeHeader(ctx.req.headers['content-type']),
    body,
    maxBytes: ctx.domain.uploads.maxBytes,
    minBytes: ctx.domain.uploads.minBytes,
    datastoreIds: ctx.domain.datastores.map((d) => d.id),
    requiresAuth: g.repo.freezeUnauthenticatedMedia,
  };
}

/** POST /_matrix/media/{r0,v1,v3}/upload */
export async function uploadHandler(ctx: Ctx): Promise<Result> {
  let head: Buffer | null = null;
  const row = await uploadMedia(ctx.svc, { ...uploadInput(ctx), onHead: (h) => { head = h; } });
  ctx.log.info('upload stored', { mediaId: row.mediaId, size: row.sizeBytes, user: row.userId });
  // Clients fetch a thumbnail or the file right after posting it: skip that first lookup.
  ctx.svc.mediaRows.set(row);
  const { blurhash } = await afterUpload(ctx.svc, row, head, ctx.domain, { blurhash: true });
  // MSC2448 (unstable prefix, as MMR and Element use it).
  return json({ content_uri: `mxc://${row.origin}/${row.mediaId}`, ...(blurhash ? { 'xyz.amorgan.blurhash': blurhash } : {}) });
}

/** IDs with a PUT in progress on this instance: a second concurrent PUT gets 409 at once. */
const putsInFlight = new Set<string>();

/**
 * PUT /_matrix/media/v3/upload/{serverName}/{mediaId} (MSC2246). Checks run in the spec's
 * order, before a byte of the body is read: unknown → other user → already uploaded → expired.
 */
export async function uploadAsyncHandler(ctx: Ctx): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  if (origin !== ctx.serverName) throw Errors.notFound('This media ID was not created on this homeserver');
  const [reservation, media] = await Promise.all([getReservation(ctx.svc.db, origin, mediaId), getMedia(ctx.svc.db, origin, mediaId)]);
  if (!reservation && !media) throw Errors.notFound('Unknown media ID; create one with /_matrix/media/v1/create');
  const owner = media?.userId ?? reservation!.userId;
  if (owner !== ctx.user!.userId) throw Errors.forbidden('This media ID was created by another user');
  if (media) throw Errors.cannotOverwrite();
  if (reservation!.expiresTs <= Date.now()) throw Errors.notFound('This media ID has expired');
  const key = `${origin}/${mediaId}`;
  if (putsInFlight.has(key)) throw Errors.cannotOverwrite();
  putsInFlight.add(key);
  let head: Buffer | null = null;
  let row;
  try {
    row = await uploadMedia(ctx.svc, { ...uploadInput(ctx), reservedMediaId: mediaId, onHead: (h) => { head = h; } });
  } finally {
    putsInFlight.delete(key);
  }
  ctx.svc.mediaRows.set(row);
  ctx.svc.waiters.notify(key);
  ctx.svc.redis.announceUpload(key);
  // The PUT answers {} (no place for a blurhash); pre-generation still runs.
  void afterUpload(ctx.svc, row, head, ctx.domain, { blurhash: false });
  ctx.log.info('async upload stored', { mediaId, user: ctx.user!.userId });
  return json({});
}
