import { Errors } from '../../errors.js';
import { renderIdenticon } from '../../pipelines/identicon.js';
import type { Result } from '../../http/types.js';
import { positiveIntParam } from '../params.js';
import type { Ctx } from '../services.js';

// GET /_matrix/media/r0/identicon/{seed}?width&height (MMR).

// MMR's range (api/r0/identicon.go): each side is clamped to 96..512 rather than refused, so
// clients asking for tiny or huge avatars still get a usable image of a bounded cost.
const MIN_SIDE = 96;
const MAX_SIDE = 512;
const clampSide = (v: number) => Math.min(MAX_SIDE, Math.max(MIN_SIDE, v));

export async function identiconHandler(ctx: Ctx): Promise<Result> {
  if (!ctx.domain.identicons.enabled) throw Errors.unrecognized();
  const seed = ctx.params.seed ?? '';
  if (seed.length > 1024) throw Errors.invalidParam(`seed: expected at most 1024 characters, got ${seed.length}`);
  const q = ctx.req.query;
  const asked = positiveIntParam('width', q.get('width'), { required: false, fallback: 96 });
  // As in MMR, a width alone gives a square identicon.
  const width = clampSide(asked);
  const height = clampSide(positiveIntParam('height', q.get('height'), { required: false, fallback: asked }));
  const png = await renderIdenticon(ctx.svc.identicon, { seed, width, height });
  return {
    kind: 'bytes',
    status: 200,
    headers: {
      'Content-Type': 'image/png',
      'Content-Disposition': 'inline; filename=identicon.png',
      'Cache-Control': 'public, max-age=86400, immutable',
    },
    body: png,
  };
}
