import { Errors } from '../../errors.js';
import { readSmallBody } from '../../http/body.js';
import type { Ctx } from '../services.js';

/** A small JSON object body (admin requests); an empty body is `{}`. */
export async function readJsonBody(ctx: Ctx): Promise<Record<string, unknown>> {
  if (!ctx.req.body) return {};
  const raw = (await readSmallBody(ctx.req.body, 64 * 1024)).toString('utf8').trim();
  if (raw === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw Errors.invalidParam('body: expected a JSON object');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw Errors.invalidParam('body: expected a JSON object');
  return v as Record<string, unknown>;
}

/** Drains a body the endpoint does not use (so the kept-alive connection stays usable). */
export async function drainBody(ctx: Ctx): Promise<void> {
  if (ctx.req.body) await readSmallBody(ctx.req.body, 64 * 1024).catch(() => undefined);
}
