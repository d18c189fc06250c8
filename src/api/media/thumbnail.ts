import type { Result } from '../../http/types.js';
import { serveThumbnail } from '../../pipelines/serve-thumbnail.js';
import type { HttpRequest } from '../../http/types.js';
import {
  booleanParam,
  mediaIdParam,
  methodParam,
  positiveIntParam,
  serverNameParam,
  timeoutMsParam,
} from '../params.js';
import type { Ctx } from '../services.js';
import { thumbnailHeaders } from './media-headers.js';

/** The thumbnail query parameters (client, legacy and federation endpoints alike). */
export function parseThumbnailQuery(req: HttpRequest) {
  const q = req.query;
  const width = positiveIntParam('width', q.get('width'));
  const height = positiveIntParam('height', q.get('height'));
  const method = methodParam(q.get('method'));
  const animated =
    booleanParam('animated', q.get('animated')) ??
    booleanParam('org.matrix.msc2705.animated', q.get('org.matrix.msc2705.animated'));
  const allowRemote = booleanParam('allow_remote', q.get('allow_remote')) ?? true;
  const timeoutMs = timeoutMsParam(q.get('timeout_ms'));
  return { width, height, method, animated, allowRemote, timeoutMs };
}

/** GET/HEAD thumbnail, legacy (`authenticated` false) and /_matrix/client/v1/media. */
export async function thumbnailHandler(ctx: Ctx, authenticated: boolean): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const q = parseThumbnailQuery(ctx.req);
  const thumb = await serveThumbnail(ctx.svc.thumbnail, {
    origin,
    mediaId,
    width: q.width,
    height: q.height,
    method: q.method,
    animated: q.animated,
    allowRemote: q.allowRemote,
    timeoutMs: q.timeoutMs,
    authenticated,
    httpMethod: ctx.req.method,
    domain: ctx.domain,
    log: ctx.log,
  });
  return { kind: 'media', status: 200, headers: thumbnailHeaders(thumb.contentType), media: thumb.media };
}
