import { json, type Result } from '../../http/types.js';
import { storageUsage } from '../../pipelines/media-usage.js';
import type { Ctx } from '../services.js';

/** GET …/usage (MSC4034): bytes and files the user has stored, whether or not a quota applies. */
export async function usageHandler(ctx: Ctx, unstable: boolean): Promise<Result> {
  const { bytes, files } = await storageUsage(ctx.svc.upload, ctx.serverName, ctx.user!.userId);
  const prefix = unstable ? 'org.matrix.msc4034.storage' : 'm.storage';
  return json({ [`${prefix}.used`]: bytes, [`${prefix}.files`]: files });
}
