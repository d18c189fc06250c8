import { Errors } from '../../errors.js';
import { callerIsLocalAdmin } from '../auth.js';
import type { Actor } from '../../pipelines/admin/moderation-deps.js';
import type { Ctx } from '../services.js';

// The one role check behind every admin route: a repo admin acts on every homeserver; a local
// admin (an admin of the Host's homeserver, asked through its admin API) only on that
// homeserver's media and users, where the route allows local admins at all.

export async function actorOf(ctx: Ctx, opts: { localAdmins: boolean; what?: string }): Promise<Actor> {
  const user = ctx.user;
  if (!user) throw Errors.missingToken();
  if (user.isRepoAdmin) return { userId: user.userId, serverName: ctx.serverName, scopeOrigin: null };
  if (opts.localAdmins && (await callerIsLocalAdmin(ctx))) {
    return { userId: user.userId, serverName: ctx.serverName, scopeOrigin: ctx.serverName };
  }
  throw Errors.forbidden(
    opts.localAdmins
      ? `Only repository admins and admins of ${ctx.serverName} may ${opts.what ?? 'use this endpoint'}`
      : `Only repository admins may ${opts.what ?? 'use this endpoint'}`,
  );
}

/** A local admin may name only its own homeserver. */
export function assertServerInScope(actor: Actor, serverName: string): void {
  if (actor.scopeOrigin !== null && serverName.toLowerCase() !== actor.scopeOrigin.toLowerCase()) {
    throw Errors.forbidden(`A local admin of ${actor.scopeOrigin} may only act on ${actor.scopeOrigin}`);
  }
}

/** `@local:server` → server; 400 for anything else. */
export function userIdParam(v: string | undefined): { userId: string; server: string } {
  const s = v ?? '';
  const m = /^@[^:]+:([^\s/]+)$/.exec(s);
  if (!m || s.length > 255) throw Errors.invalidParam(`userId: expected @localpart:server, got '${s.slice(0, 64)}'`);
  return { userId: s, server: m[1]! };
}

/** `!opaque:server` (room versions 1-11) or `!opaque` (v12); 400 for anything else. */
export function roomIdParam(v: string | undefined): string {
  const s = v ?? '';
  if (!/^![^\s/]+$/.test(s) || s.length > 255)
    throw Errors.invalidParam(`roomId: expected !room_id, got '${s.slice(0, 64)}'`);
  return s;
}

/** `before_ts` in ms; absent: `fallback` (undefined means required). */
export function beforeTsParam(v: string | null, fallback?: number): number {
  if (v === null || v === '') {
    if (fallback === undefined) throw Errors.missingParam('before_ts: required (milliseconds since the epoch)');
    return fallback;
  }
  if (!/^\d{1,16}$/.test(v))
    throw Errors.invalidParam(`before_ts: expected milliseconds since the epoch, got '${v.slice(0, 32)}'`);
  return Number(v);
}
