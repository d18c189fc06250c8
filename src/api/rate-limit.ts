import { Errors, MatrixError } from '../errors.js';
import type { Result } from '../http/types.js';
import { parseRange } from '../http/range.js';
import type { Refusal } from '../ratelimit/limiter.js';
import { authenticate } from './auth.js';
import type { Ctx, Route } from './services.js';

// The dispatcher's path when rateLimit.enabled: which bucket a request is charged to, and the
// 429 it gets when that bucket is empty. Decided from memory (src/ratelimit), so a limited
// request costs no database query and, with Redis, no round trip while a lease lasts.

/** Routes whose answer is charged to the client's byte bucket (MMR: downloads and thumbnails). */
const BYTE_ROUTES = new Set([
  'download',
  'download_authenticated',
  'thumbnail',
  'thumbnail_authenticated',
  'federation_download',
  'federation_thumbnail',
]);

function refuse(r: Refusal): never {
  const what = r.reason === 'bytes' ? 'Too much downloaded' : 'Too many requests';
  throw Errors.limitExceeded(`${what}; retry in ${Math.ceil(r.retryAfterMs / 1000)} s`, r.retryAfterMs);
}

/** Whether the request carries credentials that authentication would have to check. */
function hasCredentials(ctx: Ctx): boolean {
  return ctx.req.headers['authorization'] !== undefined || ctx.req.rawQuery.includes('access_token=');
}

/** Bytes a media answer sends: none for HEAD, the range's length for a Range request. */
function mediaBytes(ctx: Ctx, size: number): number {
  if (ctx.req.method === 'HEAD') return 0;
  const range = parseRange(ctx.req.headers['range'], size);
  return range.kind === 'range' ? range.end - range.start + 1 : size;
}

export async function limited(ctx: Ctx, route: Route, addr: string): Promise<Result> {
  const rl = ctx.svc.rateLimit;
  // Step 1: exempt networks (bridges, appservices, internal tools) skip everything.
  if (rl.exempt(addr, null)) {
    ctx.user = await authenticate(ctx, route.auth);
    return route.handler(ctx);
  }
  // Step 2: authenticate. An IP that keeps sending bad credentials is refused before its next
  // token reaches the homeserver (whoami) or a server's keys are fetched: a flood of made-up
  // tokens costs one memory lookup each. Only failures count, so users sharing the IP (NAT)
  // with a broken client keep their own budget.
  if (hasCredentials(ctx)) {
    const shieldMs = rl.authShielded(addr);
    if (shieldMs > 0) refuse({ reason: 'requests', retryAfterMs: shieldMs });
    try {
      ctx.user = await authenticate(ctx, route.auth);
    } catch (e) {
      if (e instanceof MatrixError && e.status === 401) rl.authFailed(addr);
      throw e;
    }
  } else ctx.user = await authenticate(ctx, route.auth);
  // Step 3: the client is the authenticated user (or server), else the IP. Repo admins and
  // exempt user globs are never limited.
  const user = ctx.user;
  if (user !== null && (user.isRepoAdmin || (user.userId !== '' && rl.exempt(addr, user.userId))))
    return route.handler(ctx);
  const client = user?.server ? `s:${user.server}` : user && user.userId !== '' ? `u:${user.userId}` : `ip:${addr}`;
  // Step 4: one request token.
  const refusal = await rl.takeRequest(client, route.name);
  if (refusal) refuse(refusal);
  if (!BYTE_ROUTES.has(route.name)) return route.handler(ctx);
  // Step 5: downloads need room in the byte bucket; what they send is charged once it is known,
  // so a download that empties the bucket limits the next one (MMR's overflow, once).
  if (ctx.req.method !== 'HEAD') {
    const full = rl.checkBytes(client, route.name);
    if (full) refuse(full);
  }
  const result = await route.handler(ctx);
  if (result.kind === 'media') rl.chargeBytes(client, mediaBytes(ctx, result.media.size));
  else if (result.kind === 'bytes') rl.chargeBytes(client, result.body.length);
  else if (result.kind === 'stream' && ctx.req.method !== 'HEAD') {
    // Remote media streamed through (or federation multipart): length unknown until the end.
    // Charged downloads.maxBytes up front as MMR does, the unsent part refunded at the end.
    const upFront = Math.max(0, ctx.domain.downloads.maxBytes);
    return {
      kind: 'stream',
      status: result.status,
      headers: result.headers,
      body: rl.chargeStream(client, result.body, upFront),
    };
  }
  return result;
}
