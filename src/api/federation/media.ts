import type { Readable } from 'node:stream';
import type { Result } from '../../http/types.js';
import { contentDisposition } from '../../http/content-disposition.js';
import { multipartResponse, newBoundary } from '../../matrix/multipart.js';
import { federationDownload } from '../../pipelines/download.js';
import { federationThumbnail } from '../../pipelines/serve-thumbnail.js';
import { parseThumbnailQuery } from '../media/thumbnail.js';
import { thumbnailHeaders } from '../media/media-headers.js';
import { mediaIdParam, timeoutMsParam } from '../params.js';
import type { Ctx } from '../services.js';

// Federation media (spec v1.11, MSC3916): our own media only, as multipart/mixed with a `{}`
// JSON part and then the file, streamed from the datastore with backpressure.

function multipart(
  file: { contentType: string; contentDisposition: string; body: Readable } | { location: string },
): Result {
  const boundary = newBoundary();
  return {
    kind: 'stream',
    status: 200,
    headers: { 'Content-Type': `multipart/mixed; boundary=${boundary}` },
    body: multipartResponse({ boundary, json: {}, file }),
  };
}

/** GET /_matrix/federation/v1/media/download/{mediaId} */
export async function federationDownloadHandler(ctx: Ctx): Promise<Result> {
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const timeoutMs = timeoutMsParam(ctx.req.query.get('timeout_ms'));
  const got = await federationDownload(ctx.svc.download, { origin: ctx.serverName, mediaId, timeoutMs, log: ctx.log });
  if (got.kind === 'location') return multipart({ location: got.url });
  const contentType = got.contentType ?? 'application/octet-stream';
  return multipart({
    contentType,
    contentDisposition: contentDisposition(contentType, got.uploadName),
    body: got.body,
  });
}

/** GET /_matrix/federation/v1/media/thumbnail/{mediaId}: the same bytes as the client endpoint. */
export async function federationThumbnailHandler(ctx: Ctx): Promise<Result> {
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const q = parseThumbnailQuery(ctx.req);
  const { contentType, body } = await federationThumbnail(ctx.svc.thumbnail, {
    ...q,
    origin: ctx.serverName,
    mediaId,
    domain: ctx.domain,
    log: ctx.log,
  });
  return multipart({ contentType, contentDisposition: thumbnailHeaders(contentType)['Content-Disposition']!, body });
}
