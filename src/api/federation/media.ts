import { Readable } from 'node:stream';
import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { contentDisposition } from '../../http/content-disposition.js';
import { multipartResponse, newBoundary } from '../../matrix/multipart.js';
import { parseTimeoutMs, resolveLocalMedia } from '../../pipelines/download.js';
import { findOrCreateThumbnail, thumbnailKey } from '../../pipelines/thumbnail.js';
import { parseThumbnailQuery, thumbnailHeaders } from '../media/thumbnail.js';
import { mediaIdParam } from '../params.js';
import type { Ctx } from '../services.js';

// Federation media (spec v1.11, MSC3916): our own media only, as multipart/mixed with a `{}`
// JSON part and then the file, streamed from the datastore with backpressure.

function multipart(file: { contentType: string; contentDisposition: string; body: Readable } | { location: string }): Result {
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
  const timeoutMs = parseTimeoutMs(ctx.req.query.get('timeout_ms'));
  const row = await resolveLocalMedia(ctx.svc, { origin: ctx.serverName, mediaId, timeoutMs, authenticated: true });
  const ds = ctx.svc.datastores.get(row.datastoreId);
  if (!ds) throw Errors.unknown('Media is stored in a datastore that is not configured');
  // A datastore with a public address: the peer fetches the bytes there (a Location part).
  const publicUrl = ds.publicUrl?.(row.location) ?? null;
  if (publicUrl) return multipart({ location: publicUrl });
  const contentType = row.contentType ?? 'application/octet-stream';
  const body = row.sizeBytes === 0 ? Readable.from([]) : ds.openStream(row.location, { start: 0, end: row.sizeBytes - 1 });
  return multipart({ contentType, contentDisposition: contentDisposition(contentType, row.uploadName), body });
}

/** GET /_matrix/federation/v1/media/thumbnail/{mediaId}: the same bytes as the client endpoint. */
export async function federationThumbnailHandler(ctx: Ctx): Promise<Result> {
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const q = parseThumbnailQuery(ctx);
  const media = await resolveLocalMedia(ctx.svc, { origin: ctx.serverName, mediaId, timeoutMs: q.timeoutMs, authenticated: true });
  const cfg = ctx.domain.thumbnails;
  const thumb = await findOrCreateThumbnail(ctx.svc, media, thumbnailKey(media, q, cfg), cfg, ctx.domain.datastores.map((d) => d.id));
  let contentType: string;
  let body: Readable;
  if (thumb.kind === 'fresh') {
    contentType = thumb.fresh.contentType;
    body = Readable.from([thumb.fresh.bytes]);
  } else {
    const ds = ctx.svc.datastores.get(thumb.row.datastoreId);
    if (!ds) throw Errors.unknown('Thumbnail is stored in a datastore that is not configured');
    contentType = thumb.row.contentType;
    body = ds.openStream(thumb.row.location, { start: 0, end: thumb.row.sizeBytes - 1 });
  }
  const h = thumbnailHeaders(contentType);
  return multipart({ contentType, contentDisposition: h['Content-Disposition'], body });
}
