import type { Result } from '../../http/types.js';
import { json } from '../../http/types.js';
import { mediaInfo } from '../../pipelines/admin-info.js';
import { booleanParam, mediaIdParam, serverNameParam, timeoutMsParam } from '../params.js';
import type { Ctx } from '../services.js';

// MMR's media info (`/_matrix/media/unstable/info/{server}/{mediaId}`, any user): what the
// repo knows about one media item. MMR's field names; `width`/`height` only for images whose
// header could be read, `thumbnails` only when some are stored (MMR omitted both otherwise),
// the audio fields only for audio that could be decoded.

export async function mediaInfoHandler(ctx: Ctx): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaId = mediaIdParam(ctx.params.mediaId);
  const allowRemote = booleanParam('allow_remote', ctx.req.query.get('allow_remote')) ?? true;
  const timeoutMs = timeoutMsParam(ctx.req.query.get('timeout_ms'));
  const info = await mediaInfo(ctx.svc.adminInfo, {
    origin,
    mediaId,
    allowRemote,
    timeoutMs,
    thumbnailsCfg: ctx.domain.thumbnails,
    log: ctx.log,
  });
  const { row } = info;
  return json({
    content_uri: `mxc://${row.origin}/${row.mediaId}`,
    content_type: row.contentType ?? 'application/octet-stream',
    ...(info.width !== undefined && info.height !== undefined ? { width: info.width, height: info.height } : {}),
    size: row.sizeBytes,
    hashes: { sha256: row.sha256 },
    // MMR's audio fields; duration in seconds, key_samples as 768 peaks in 0..1.
    ...(info.audio
      ? {
          duration: info.audio.durationMs / 1000,
          num_channels: info.audio.channels,
          num_total_samples: info.audio.totalSamples,
          key_samples: info.audio.keySamples,
        }
      : {}),
    ...(info.thumbnails.length > 0
      ? {
          thumbnails: info.thumbnails.map((t) => ({
            width: t.width,
            height: t.height,
            ready: true,
            content_type: t.contentType,
            size: t.sizeBytes,
          })),
        }
      : {}),
  });
}
