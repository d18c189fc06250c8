import { LRUCache } from 'lru-cache';
import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { positiveIntParam } from '../params.js';
import type { Ctx } from '../services.js';

// GET /_matrix/media/r0/identicon/{seed}?width&height (MMR): a deterministic PNG per seed and
// size, rendered in the static image pool. Results are small and often repeated (avatars of
// users without one), so recent ones are kept in memory.

// MMR's range (api/r0/identicon.go): each side is clamped to 96..512 rather than refused, so
// clients asking for tiny or huge avatars still get a usable image of a bounded cost.
const MIN_SIDE = 96;
const MAX_SIDE = 512;
const clampSide = (v: number) => Math.min(MAX_SIDE, Math.max(MIN_SIDE, v));
const rendered = new LRUCache<string, Buffer>({ maxSize: 16 * 1024 * 1024, sizeCalculation: (b) => b.length });

export async function identiconHandler(ctx: Ctx): Promise<Result> {
  if (!ctx.domain.identicons.enabled) throw Errors.unrecognized();
  const seed = ctx.params.seed ?? '';
  if (seed.length > 1024) throw Errors.invalidParam(`seed: expected at most 1024 characters, got ${seed.length}`);
  const q = ctx.req.query;
  const asked = positiveIntParam('width', q.get('width'), { required: false, fallback: 96 });
  // As in MMR, a width alone gives a square identicon.
  const width = clampSide(asked);
  const height = clampSide(positiveIntParam('height', q.get('height'), { required: false, fallback: asked }));
  const key = `${width}x${height}/${seed}`;
  let png = rendered.get(key);
  if (!png) {
    const reply = await ctx.svc.thumbnails.identicon(seed, width, height);
    if (!reply.ok) throw Errors.unknown(reply.message);
    png = Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength);
    rendered.set(key, png);
  }
  return {
    kind: 'bytes',
    status: 200,
    headers: { 'Content-Type': 'image/png', 'Content-Disposition': 'inline; filename=identicon.png', 'Cache-Control': 'public, max-age=86400, immutable' },
    body: png,
  };
}
