import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { parseTimeoutMs, resolveLocalMedia } from '../../pipelines/download.js';
import { findOrCreateThumbnail, thumbnailKey } from '../../pipelines/thumbnail.js';
import { Readable } from 'node:stream';
import type { Thumbnail } from '../../pipelines/thumbnail.js';
import { booleanParam, mediaIdParam, methodParam, positiveIntParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { blobBody } from './blob-body.js';

const CACHE_CONTROL = 'private, max-age=259200, immutable';
const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif' };

/** GET/HEAD thumbnail, legacy (`authenticated` false) and /_matrix/client/v1/media. */
export async function thumbnailHandler(ctx: Ctx, authenticated: boolean): Promise<Result> {
  const q = ctx.req.query;
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const width = positiveIntParam('width', q.get('width'));
  const height = positiveIntParam('height', q.get('height'));
  const method = methodParam(q.get('method'));
  const animated = booleanParam('animated', q.get('animated')) ?? booleanParam('org.matrix.msc2705.animated', q.get('org.matrix.msc2705.animated'));
  booleanParam('allow_remote', q.get('allow_remote'));
  const timeoutMs = parseTimeoutMs(q.get('timeout_ms'));
  if (!ctx.svc.config().domains.has(origin)) {
    throw Errors.notFound(`Remote media (${origin}) is not available from this media repository`);
  }
  const media = await resolveLocalMedia(ctx.svc, { origin, mediaId, timeoutMs, authenticated });
  const cfg = ctx.domain.thumbnails;
  const key = thumbnailKey(media, { width, height, method, animated }, cfg);
  const thumb = await findOrCreateThumbnail(ctx.svc, media, key, cfg, ctx.domain.datastores.map((d) => d.id));
  return thumbnailResult(ctx, thumb);
}

/** Spec v1.12: thumbnails are always inline, with a filename. */
function thumbnailHeaders(contentType: string) {
  const ext = EXTENSIONS[contentType] ?? 'png';
  return { 'Content-Type': contentType, 'Content-Disposition': `inline; filename=thumbnail.${ext}`, 'Cache-Control': CACHE_CONTROL };
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
  return { kind: 'media', status: 200, headers: thumbnailHeaders(row.contentType), media: blobBody(ds, row, ctx.domain.downloads.smallFileBytes) };
}
