import type { Result } from '../../http/types.js';
import { Errors } from '../../errors.js';
import { previewUrl } from '../../preview/pipeline.js';
import type { Ctx } from '../services.js';

/** GET …/preview_url?url=…&ts=…: OpenGraph JSON for a URL (guests are refused by the route's auth). */
export async function previewUrlHandler(ctx: Ctx): Promise<Result> {
  const { query, headers } = ctx.req;
  const url = query.get('url');
  if (url === null || url === '') throw Errors.missingParam('url: required');
  const tsText = query.get('ts');
  let ts: number | null = null;
  if (tsText !== null && tsText !== '') {
    if (!/^-?\d{1,16}$/.test(tsText))
      throw Errors.invalidParam(`ts: expected milliseconds since the epoch, got '${tsText.slice(0, 32)}'`);
    ts = Number(tsText);
  }
  // The request's logger, so a failed preview's line carries its request ID.
  const body = await previewUrl(
    { ...ctx.svc.preview, log: ctx.log },
    {
      url,
      ts,
      acceptLanguage: headers['accept-language'] ?? null,
      userId: ctx.user!.userId,
      serverName: ctx.serverName,
      domain: ctx.domain,
    },
  );
  return { kind: 'bytes', status: 200, body: Buffer.from(body), headers: { 'Content-Type': 'application/json' } };
}
