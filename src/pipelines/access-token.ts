import { Errors, rejectsToken } from '../errors.js';
import type { AppserviceConfig, DomainConfig, LoadedConfig } from '../config/schema.js';
import type { TokenCache } from '../cache/tokens.js';
import type { AdminStatusCache } from '../cache/admin-status.js';
import type { HomeserverClient } from '../matrix/homeserver.js';
import type { ServerKeyFetcher } from '../matrix/server-keys.js';
import type { Logger } from '../logging/logger.js';

// Who a client access token belongs to: the shared secret, a locally configured appservice, the
// token cache, or the homeserver's whoami (remembered, and so are rejections); and logout,
// which forgets tokens here at once.

export interface AuthUser {
  userId: string;
  isGuest: boolean;
  /** Listed in `admins`, or the shared-secret token. */
  isRepoAdmin: boolean;
  /** An admin of the Host's homeserver (its admin API said so); set on `localadmin` routes and
   * by callerIsLocalAdmin, undefined where nobody asked. */
  isLocalAdmin?: boolean;
  token: string;
  /** Federation requests: the server whose X-Matrix signature was verified. */
  server?: string;
}

export interface AccessTokenDeps {
  config(): LoadedConfig;
  tokens: TokenCache;
  /** Forgotten with the token at logout, so a logged-out token's admin answer goes too. */
  adminStatus?: AdminStatusCache;
  homeserver: HomeserverClient;
  serverKeys: ServerKeyFetcher;
}

export interface TokenRequest {
  token: string;
  /** An appservice's `?user_id=`. */
  asUser: string | null;
  serverName: string;
  domain: DomainConfig;
  /** The client's address, passed to the homeserver as X-Forwarded-For. */
  remoteAddress: string;
  log: Logger;
}

export async function resolveAccessToken(deps: AccessTokenDeps, r: TokenRequest): Promise<AuthUser> {
  const { token, asUser } = r;
  const g = deps.config().global;
  if (g.sharedSecretAuth.enabled && g.sharedSecretAuth.token && token === g.sharedSecretAuth.token) {
    return { userId: '@sharedsecret', isGuest: false, isRepoAdmin: true, token };
  }
  const at = r.domain.accessTokens;
  if (at.useLocalAppserviceConfig) {
    const as = at.appservices.find((a) => a.asToken === token);
    if (as)
      return {
        userId: appserviceUser(as, asUser),
        isGuest: false,
        isRepoAdmin: g.admins.includes(appserviceUser(as, asUser)),
        token,
      };
  }
  const cached = deps.tokens.get(r.serverName, token, asUser);
  if (cached) {
    if ('invalid' in cached) throw Errors.unknownToken(cached.softLogout);
    return { ...cached, isRepoAdmin: g.admins.includes(cached.userId), token };
  }
  try {
    const who = await deps.homeserver.whoami(r.domain.homeserver, token, asUser, {
      timeoutMs: r.domain.timeouts.clientServerTimeoutSeconds * 1000,
      forwardedFor: r.remoteAddress,
      log: r.log, // an unreachable homeserver is logged with this request's ID
    });
    deps.tokens.set(r.serverName, token, asUser, who);
    return { ...who, isRepoAdmin: g.admins.includes(who.userId), token };
  } catch (e) {
    // Remember rejected tokens too (not outages): a client retrying a dead token is common.
    if (rejectsToken(e)) {
      deps.tokens.set(r.serverName, token, asUser, { invalid: true, softLogout: e.extra.soft_logout === true });
    }
    throw e;
  }
}

/** An appservice acts as its sender, or as a user in its namespaces via `?user_id=`. */
function appserviceUser(as: AppserviceConfig, asUser: string | null): string {
  if (!asUser || asUser === as.senderUserId) return as.senderUserId;
  if (as.userNamespaces.some((ns) => new RegExp(`^(?:${ns.regex})$`).test(asUser))) return asUser;
  throw Errors.forbidden(`Appservice ${as.id} may not act as ${asUser}`);
}

/**
 * POST /_matrix/client/{r0,v3}/logout[/all]: passed to the homeserver, then the token (or every
 * token of the user) is dropped from our cache so it stops working here at once.
 */
export async function logout(
  deps: AccessTokenDeps,
  r: {
    user: AuthUser;
    all: boolean;
    version: 'r0' | 'v3';
    serverName: string;
    domain: DomainConfig;
    remoteAddress: string;
    log: Logger;
  },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await deps.homeserver.proxyJson(
    r.domain.homeserver,
    'POST',
    `_matrix/client/${r.version}/logout${r.all ? '/all' : ''}`,
    r.user.token,
    { timeoutMs: r.domain.timeouts.clientServerTimeoutSeconds * 1000, forwardedFor: r.remoteAddress, log: r.log },
    '{}',
  );
  if (res.status === 200) {
    if (r.all) {
      deps.tokens.dropUser(r.serverName, r.user.userId);
      deps.adminStatus?.dropUser(r.serverName, r.user.userId);
    } else {
      deps.tokens.dropToken(r.serverName, r.user.token);
      deps.adminStatus?.dropToken(r.serverName, r.user.token);
    }
  }
  return res;
}
