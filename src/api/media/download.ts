import type { Result } from '../../http/types.js';
import { downloadMedia } from '../../pipelines/download.js';
import { booleanParam, mediaIdParam, serverNameParam, timeoutMsParam } from '../params.js';
import type { Ctx } from '../services.js';
import { downloadHeaders, fileHeaders, redirectResult, thumbnailHeaders } from './media-headers.js';

/** GET/HEAD download, legacy (`authenticated` false) and /_matrix/client/v1/media. */
export async function downloadHandler(ctx: Ctx, authenticated: boolean): Promise<Result> {
  const q = ctx.req.query;
  const got = await downloadMedia(ctx.svc.download, {
    origin: serverNameParam(ctx.params.serverName),
    mediaId: mediaIdParam(ctx.params.mediaId),
    timeoutMs: timeoutMsParam(q.get('timeout_ms')),
    allowRemote: booleanParam('allow_remote', q.get('allow_remote')) ?? true,
    allowRedirect: q.get('allow_redirect') === 'true',
    authenticated,
    method: ctx.req.method,
    domain: ctx.domain,
    log: ctx.log,
  });
  const fileName = ctx.params.fileName;
  if (got.kind === 'redirect') return redirectResult(got.url);
  if (got.kind === 'placeholder')
    return { kind: 'media', status: 200, headers: thumbnailHeaders(got.contentType), media: got.media };
  if (got.kind === 'streaming')
    return {
      kind: 'stream',
      status: 200,
      body: got.body,
      headers: fileHeaders(got.contentType, fileName ?? got.uploadName),
    };
  return { kind: 'media', status: 200, headers: downloadHeaders(got.row, fileName), media: got.media };
}
