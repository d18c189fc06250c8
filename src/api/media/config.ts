import { json, type Result } from '../../http/types.js';
import { storageLimits } from '../../pipelines/media-usage.js';
import type { Ctx } from '../services.js';

/**
 * GET …/config: `m.upload.size` per uploads.reportedMaxBytes (0 = maxBytes, -1 = unlimited),
 * and with quotas on, the user's MSC4034 limits (`m.storage.*`; `org.matrix.msc4034.storage.*`
 * on the unstable path).
 */
export async function configHandler(ctx: Ctx, unstable = false): Promise<Result> {
  const { maxBytes, reportedMaxBytes } = ctx.domain.uploads;
  const size = reportedMaxBytes === 0 ? maxBytes : reportedMaxBytes;
  const storage = storageLimits(ctx.domain.uploads, ctx.user!.userId);
  const prefix = unstable ? 'org.matrix.msc4034.storage' : 'm.storage';
  // An unlimited size is expressed by leaving the key out (the spec: absent = unknown).
  return json({
    ...(size > 0 ? { 'm.upload.size': size } : {}),
    ...(storage.size !== undefined ? { [`${prefix}.size`]: storage.size } : {}),
    ...(storage.maxFiles !== undefined ? { [`${prefix}.max_files`]: storage.maxFiles } : {}),
  });
}
