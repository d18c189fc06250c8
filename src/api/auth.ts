import { Errors, MatrixError } from '../errors.js';
import type { AuthMode, AuthUser, Ctx } from './services.js';
import { resolveAccessToken } from '../pipelines/access-token.js';
import { isLocalAdmin } from '../pipelines/roles.js';
import { parseXMatrix, verifyRequestSignature } from '../matrix/x-matrix.js';

/** Bearer header first; the deprecated `access_token` query parameter still works (v1.11-v1.19). */
export function extractToken(headers: Record<string, string>, query: URLSearchParams): string | null {
  const h = headers['authorization'];
  if (h) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1]!;
  }
  return query.get('access_token') || null;
}

/** Runs the route's auth mode; returns the user, or null where none is needed or given. */
export async function authenticate(ctx: Ctx, mode: AuthMode): Promise<AuthUser | null> {
  if (mode === 'none') return null;
  if (mode === 'server') return authenticateServer(ctx);
  const token = extractToken(ctx.req.headers, ctx.req.query);
  if (!token) {
    if (mode === 'optional') return null;
    throw Errors.missingToken();
  }
  let user: AuthUser;
  try {
    user = await resolveToken(ctx, token);
  } catch (e) {
    if (mode === 'optional' && e instanceof MatrixError && e.status === 401) return null;
    throw e;
  }
  if (user.isGuest && mode !== 'guest' && mode !== 'optional') throw Errors.guestForbidden();
  if (mode === 'admin' && !user.isRepoAdmin) throw Errors.forbidden('Only repository admins may use this endpoint');
  if (mode === 'localadmin' && !user.isRepoAdmin && !(await askLocalAdmin(ctx, user))) {
    throw Errors.forbidden(`Only repository admins and admins of ${ctx.serverName} may use this endpoint`);
  }
  return user;
}

/**
 * For handlers that also serve uploaders or plain users: is the caller an admin of the Host's
 * homeserver? False without a user; asked once per request (remembered on the user).
 */
export async function callerIsLocalAdmin(ctx: Ctx): Promise<boolean> {
  if (!ctx.user) return false;
  return ctx.user.isLocalAdmin ?? askLocalAdmin(ctx, ctx.user);
}

function askLocalAdmin(ctx: Ctx, user: AuthUser): Promise<boolean> {
  return isLocalAdmin(ctx.svc.roles, {
    user,
    serverName: ctx.serverName,
    domain: ctx.domain,
    remoteAddress: ctx.req.remoteAddress,
    log: ctx.log,
  });
}

function resolveToken(ctx: Ctx, token: string): Promise<AuthUser> {
  return resolveAccessToken(ctx.svc.auth, {
    token,
    asUser: ctx.req.query.get('user_id'),
    serverName: ctx.serverName,
    domain: ctx.domain,
    remoteAddress: ctx.req.remoteAddress,
    log: ctx.log,
  });
}

/**
 * Federation (spec "Request Authentication"): an X-Matrix header addressed to us (the Host's
 * homeserver), signed by a current key of its origin over method, URI, origin and destination.
 */
async function authenticateServer(ctx: Ctx): Promise<AuthUser> {
  const header = ctx.req.headers['authorization'];
  if (!header || !/^X-Matrix\s/i.test(header)) throw Errors.unauthorized('Missing X-Matrix authorization');
  let auth;
  try {
    auth = parseXMatrix(header);
  } catch (e) {
    throw Errors.unauthorized((e as Error).message);
  }
  if (auth.destination !== null && auth.destination.toLowerCase() !== ctx.serverName.toLowerCase()) {
    throw Errors.unauthorized(`This request is addressed to ${auth.destination}, not ${ctx.serverName}`);
  }
  const publicKey = await ctx.svc.auth.serverKeys.publicKey(auth.origin, auth.key).catch(() => null);
  if (!publicKey) throw Errors.unauthorized(`Could not get ${auth.origin}'s key ${auth.key}`);
  const uri = ctx.req.rawQuery ? `${ctx.req.path}?${ctx.req.rawQuery}` : ctx.req.path;
  if (!verifyRequestSignature({ method: ctx.req.method, uri, destination: ctx.serverName }, auth, publicKey)) {
    throw Errors.unauthorized('Bad X-Matrix signature');
  }
  return { userId: '', isGuest: false, isRepoAdmin: false, token: '', server: auth.origin };
}
