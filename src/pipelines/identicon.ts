import { LRUCache } from 'lru-cache';
import { Errors } from '../errors.js';
import type { ThumbnailPools } from '../pools/thumbnails.js';

// Identicons (MMR): a deterministic PNG per seed and size, rendered in the static image pool.
// Results are small and often repeated (avatars of users without one), so recent ones are
// kept in memory.

export interface IdenticonDeps {
  thumbnails: Pick<ThumbnailPools, 'identicon'>;
  /** Recent renders by size and seed. */
  rendered: LRUCache<string, Buffer>;
}

export function identiconCache(): LRUCache<string, Buffer> {
  return new LRUCache<string, Buffer>({ maxSize: 16 * 1024 * 1024, sizeCalculation: (b) => b.length });
}

export async function renderIdenticon(
  deps: IdenticonDeps,
  r: { seed: string; width: number; height: number },
): Promise<Buffer> {
  const key = `${r.width}x${r.height}/${r.seed}`;
  let png = deps.rendered.get(key);
  if (!png) {
    const reply = await deps.thumbnails.identicon(r.seed, r.width, r.height);
    if (!reply.ok) throw Errors.unknown(reply.message);
    png = Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength);
    deps.rendered.set(key, png);
  }
  return png;
}
