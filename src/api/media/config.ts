import { json, type Result } from '../../http/types.js';
import type { Ctx } from '../services.js';

/** GET …/config: `m.upload.size` per uploads.reportedMaxBytes (0 = maxBytes, -1 = unlimited). */
export async function configHandler(ctx: Ctx): Promise<Result> {
  const { maxBytes, reportedMaxBytes } = ctx.domain.uploads;
  const size = reportedMaxBytes === 0 ? maxBytes : reportedMaxBytes;
  // An unlimited size is expressed by leaving the key out (the spec: absent = unknown).
  return json(size > 0 ? { 'm.upload.size': size } : {});
}
