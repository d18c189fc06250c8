import { Errors } from '../../errors.js';
import type { Result, Headers } from '../../http/types.js';
import { contentDisposition } from '../../http/content-disposition.js';
import { parseTimeoutMs, resolveLocalMedia } from '../../pipelines/download.js';
import { mediaIdParam, serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { blobBody } from './blob-body.js';

/** Media is immutable under its ID; clients and proxies may keep it (privately). */
const CACHE_CONTROL = 'private, max-age=259200, immutable';

/** GET/HEAD download, legacy (`authenticated` false) and /_matrix/client/v1/media. */
export async function downloadHandler(ctx: Ctx, authenticated: boolean): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const timeoutMs = parseTimeoutMs(ctx.req.query.get('timeout_ms'));
  if (!ctx.svc.config().domains.has(origin)) {
    // Remote media over federation is not part of this build: answer as the spec's
    // allow_remote=false does, rather than pretending to fetch.
    throw Errors.notFound(`Remote media (${origin}) is not available from this media repository`);
  }
  const row = await resolveLocalMedia(ctx.svc, { origin, mediaId, timeoutMs, authenticated });
  const ds = ctx.svc.datastores.get(row.datastoreId);
  if (!ds) {
    ctx.log.error('media row points at an unknown datastore', { datastore: row.datastoreId, mediaId });
    throw Errors.unknown('Media is stored in a datastore that is not configured');
  }
  const contentType = row.contentType ?? 'application/octet-stream';
  const filename = ctx.params.fileName ?? row.uploadName;
  const headers: Headers = {
    'Content-Type': contentType,
    'Content-Disposition': contentDisposition(contentType, filename),
    'Cache-Control': CACHE_CONTROL,
  };
  return { kind: 'media', status: 200, headers, media: blobBody(ds, row, ctx.domain.downloads.smallFileBytes) };
}
