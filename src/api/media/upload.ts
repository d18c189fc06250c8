import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { uploadMedia, type UploadRequest } from '../../pipelines/upload.js';
import { uploadToReservation } from '../../pipelines/upload-async.js';
import { contentTypeHeader, filenameParam, mediaIdParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';

function uploadRequest(ctx: Ctx): UploadRequest {
  const body = ctx.req.body;
  if (!body) throw Errors.missingParam('A request body is required');
  return {
    origin: ctx.serverName,
    userId: ctx.user!.userId,
    uploadName: filenameParam(ctx.req.query.get('filename')),
    contentType: contentTypeHeader(ctx.req.headers['content-type']),
    body,
    domain: ctx.domain,
    log: ctx.log,
  };
}

/** POST /_matrix/media/{r0,v1,v3}/upload */
export async function uploadHandler(ctx: Ctx): Promise<Result> {
  const { row, blurhash } = await uploadMedia(ctx.svc.upload, uploadRequest(ctx));
  // MSC2448 (unstable prefix, as MMR and Element use it).
  return json({
    content_uri: `mxc://${row.origin}/${row.mediaId}`,
    ...(blurhash ? { 'xyz.amorgan.blurhash': blurhash } : {}),
  });
}

/** PUT /_matrix/media/v3/upload/{serverName}/{mediaId} (MSC2246). */
export async function uploadAsyncHandler(ctx: Ctx): Promise<Result> {
  const mxcServer = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const { blurhash } = await uploadToReservation(ctx.svc.upload, {
    origin: ctx.serverName,
    userId: ctx.user!.userId,
    domain: ctx.domain,
    log: ctx.log,
    mxcServer,
    mediaId,
    upload: () => uploadRequest(ctx),
  });
  // The spec's answer is {}; MSC2448's key is added as on POST (clients ignore what they do not know).
  return json(blurhash ? { 'xyz.amorgan.blurhash': blurhash } : {});
}
