import { Errors, MatrixError } from '../../errors.js';
import { getRemoteMedia } from '../../pipelines/remote.js';
import type { Headers, Result } from '../../http/types.js';
import { parseTimeoutMs, resolveLocalMedia } from '../../pipelines/download.js';
import { findOrCreateThumbnail, thumbnailKey } from '../../pipelines/thumbnail.js';
import { Readable } from 'node:stream';
import type { Thumbnail } from '../../pipelines/thumbnail.js';
import { booleanParam, mediaIdParam, methodParam, positiveIntParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { MEDIA_CACHE_CONTROL } from './blob-body.js';
import { cachedBlobBody } from './cached-blob-body.js';

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif' };

/** The thumbnail query parameters (client, legacy and federation endpoints alike). */
export function parseThumbnailQuery(ctx: Ctx) {
  const q = ctx.req.query;
  const width = positiveIntParam('width', q.get('width'));
  const height = positiveIntParam('height', q.get('height'));
  const method = methodParam(q.get('method'));
  const animated = booleanParam('animated', q.get('animated')) ?? booleanParam('org.matrix.msc2705.animated', q.get('org.matrix.msc2705.animated'));
  const allowRemote = booleanParam('allow_remote', q.get('allow_remote')) ?? true;
  const timeoutMs = parseTimeoutMs(q.get('timeout_ms'));
  return { width, height, method, animated, allowRemote, timeoutMs };
}

/** GET/HEAD thumbnail, legacy (`authenticated` false) and /_matrix/client/v1/media. */
export async function thumbnailHandler(ctx: Ctx, authenticated: boolean): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const q = parseThumbnailQuery(ctx);
  const local = ctx.svc.config().domains.has(origin);
  let media;
  if (local) {
    media = await resolveLocalMedia(ctx.svc, { origin, mediaId, timeoutMs: q.timeoutMs, authenticated });
  } else {
    if (!q.allowRemote) throw Errors.notFound('Remote media was not requested (allow_remote=false)');
    media = (await getRemoteMedia(ctx.svc, { origin, mediaId, domain: ctx.domain, authenticated, wantStream: false })).row;
  }
  const cfg = ctx.domain.thumbnails;
  try {
    const thumb = await findOrCreateThumbnail(ctx.svc, media, thumbnailKey(media, q, cfg), cfg, ctx.domain.datastores.map((d) => d.id));
    return thumbnailResult(ctx, thumb);
  } catch (e) {
    // Spec: content too large to thumbnail is 413 for local media, 502 for remote.
    if (!local && e instanceof MatrixError && e.errcode === 'M_TOO_LARGE') throw Errors.remoteTooLarge(e.message);
    throw e;
  }
}

/** Spec v1.12: thumbnails are always inline, with a filename. One frozen headers object per
 * output type (a handful), so the responder builds each type's header block once rather than
 * per request. */
const headersByType = new Map<string, Headers>();

export function thumbnailHeaders(contentType: string): Headers {
  let h = headersByType.get(contentType);
  if (!h) {
    const ext = EXTENSIONS[contentType] ?? 'png';
    h = Object.freeze({ 'Content-Type': contentType, 'Content-Disposition': `inline; filename=thumbnail.${ext}`, 'Cache-Control': MEDIA_CACHE_CONTROL });
    // Types come from our own encoder output and stored rows; the bound is only a backstop.
    if (headersByType.size < 64) headersByType.set(contentType, h);
  }
  return h;
}

export function thumbnailResult(ctx: Ctx, thumb: Thumbnail): Result {
  if (thumb.kind === 'fresh') {
    const { bytes, sha256, contentType } = thumb.fresh;
    return {
      kind: 'media',
      status: 200,
      headers: thumbnailHeaders(contentType),
      media: {
        size: bytes.length, etag: sha256, readAll: async () => bytes,
        openStream: (start, end) => Readable.from([bytes.subarray(start, end + 1)]),
      },
    };
  }
  const row = thumb.row;
  const ds = ctx.svc.datastores.get(row.datastoreId);
  if (!ds) {
    ctx.log.error('thumbnail row points at an unknown datastore', { datastore: row.datastoreId, mediaId: row.mediaId });
    throw Errors.unknown('Thumbnail is stored in a datastore that is not configured');
  }
  return { kind: 'media', status: 200, headers: thumbnailHeaders(row.contentType), media: cachedBlobBody(ctx.svc.blobCache, ds, row, ctx.domain.downloads.smallFileBytes, ctx.req.method) };
}
