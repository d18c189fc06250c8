import { Errors } from '../../errors.js';
import type { Result, Headers } from '../../http/types.js';
import { contentDisposition } from '../../http/content-disposition.js';
import { parseTimeoutMs, resolveLocalMedia } from '../../pipelines/download.js';
import type { MediaRow } from '../../db/media.js';
import { booleanParam, mediaIdParam, serverNameParam } from '../params.js';
import { getRemoteMedia } from '../../pipelines/remote.js';
import type { Ctx } from '../services.js';
import { MEDIA_CACHE_CONTROL } from './blob-body.js';
import { cachedBlobBody } from './cached-blob-body.js';
import type { BlobLookup } from '../../cache/blob-cache.js';
import { publicRedirectUrl, redirectResult } from './redirect.js';

/** The last headers built per row object: rows come from the row cache as the same object,
 * so a hot download reuses one frozen headers object, and the responder its header block. */
const headersByRow = new WeakMap<MediaRow, { fileName: string | undefined; headers: Headers }>();

function downloadHeaders(row: MediaRow, fileName: string | undefined): Headers {
  const memo = headersByRow.get(row);
  if (memo && memo.fileName === fileName) return memo.headers;
  const contentType = row.contentType ?? 'application/octet-stream';
  const headers: Headers = Object.freeze({
    'Content-Type': contentType,
    'Content-Disposition': contentDisposition(contentType, fileName ?? row.uploadName),
    'Cache-Control': MEDIA_CACHE_CONTROL,
  });
  headersByRow.set(row, { fileName, headers });
  return headers;
}

/** GET/HEAD download, legacy (`authenticated` false) and /_matrix/client/v1/media. */
export async function downloadHandler(ctx: Ctx, authenticated: boolean): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const timeoutMs = parseTimeoutMs(ctx.req.query.get('timeout_ms'));
  let row;
  if (ctx.svc.config().domains.has(origin)) {
    row = await resolveLocalMedia(ctx.svc, { origin, mediaId, timeoutMs, authenticated });
  } else {
    if (booleanParam('allow_remote', ctx.req.query.get('allow_remote')) === false) {
      throw Errors.notFound('Remote media was not requested (allow_remote=false)');
    }
    const remote = await getRemoteMedia(ctx.svc, { origin, mediaId, domain: ctx.domain, authenticated, wantStream: true });
    if (remote.kind === 'streaming') {
      // First request for this file: its bytes arrive while they are being stored.
      const contentType = remote.contentType ?? 'application/octet-stream';
      return {
        kind: 'stream', status: 200, body: remote.body,
        headers: { 'Content-Type': contentType, 'Content-Disposition': contentDisposition(contentType, ctx.params.fileName ?? remote.uploadName), 'Cache-Control': MEDIA_CACHE_CONTROL },
      };
    }
    row = remote.row;
  }
  const ds = ctx.svc.datastores.get(row.datastoreId);
  if (!ds) {
    ctx.log.error('media row points at an unknown datastore', { datastore: row.datastoreId, mediaId });
    throw Errors.unknown('Media is stored in a datastore that is not configured');
  }
  const cache = ctx.svc.blobCache;
  let counted: BlobLookup | undefined;
  const redirect = publicRedirectUrl(ds, row.location, authenticated, ctx.req.query);
  if (redirect) {
    // MMR's redirectWhenCached false: a blob hot enough for the cache is served from memory
    // rather than sent to the CDN. Redirected downloads still count toward admission, and
    // the download that earns the blob its place is proxied once to fill the cache.
    if (ds.redirectWhenCached || !cache.enabled || ctx.req.method === 'HEAD') return redirectResult(redirect);
    counted = cache.lookup(row.sha256, row.sizeBytes);
    if (!counted.hit && !counted.admit) return redirectResult(redirect);
  }
  ctx.svc.metrics.ageAccessed.observe([], Math.max(0, Date.now() - row.creationTs) / 1000);
  const headers = downloadHeaders(row, ctx.params.fileName);
  const smallFile = ctx.domain.downloads.smallFileBytes;
  // Memory first, then Redis (by hash, small files), then the datastore.
  const media = cachedBlobBody(cache, ds, row, smallFile, ctx.req.method, (b) => ctx.svc.redis.media.wrap(b, row.sha256), counted);
  return { kind: 'media', status: 200, headers, media };
}
