import type { DomainConfig, LoadedConfig } from '../config/schema.js';
import type { AdminStatusCache } from '../cache/admin-status.js';
import type { HomeserverClient } from '../matrix/homeserver.js';
import type { Logger } from '../logging/logger.js';
import type { AuthUser } from './access-token.js';

// Roles beyond "a user": a repo admin is known from config and the shared secret (see
// access-token.ts); a local admin is an admin of the homeserver the request's Host names, and
// only that homeserver can say so (homeservers[].adminApiKind picks how it is asked).

export interface RoleDeps {
  config(): LoadedConfig;
  homeserver: HomeserverClient;
  adminStatus: AdminStatusCache;
}

export interface RoleRequest {
  user: AuthUser;
  serverName: string;
  domain: DomainConfig;
  /** The client's address, passed to the homeserver as X-Forwarded-For. */
  remoteAddress: string;
  log: Logger;
}

/**
 * Whether the user is an admin of the Host's homeserver. Only users of that homeserver (user
 * ID's server part === serverName) can be; guests never; repo admins are not automatically
 * local admins. Cached. Sets user.isLocalAdmin.
 */
export async function isLocalAdmin(deps: RoleDeps, r: RoleRequest): Promise<boolean> {
  const answer = step1Eligible(r) ? await step2Ask(deps, r) : false;
  r.user.isLocalAdmin = answer;
  return answer;
}

// Step 1: a homeserver speaks only for its own users. A user of another server (or the shared
// secret's '@sharedsecret', or a federation caller) is never asked about, and neither is a
// guest: a homeserver's admins are real accounts.
function step1Eligible(r: RoleRequest): boolean {
  const { userId, isGuest } = r.user;
  if (isGuest || !userId.startsWith('@')) return false;
  const colon = userId.indexOf(':');
  // The localpart cannot hold ':', so the server part (which may carry a port) follows the first.
  return colon > 0 && userId.slice(colon + 1).toLowerCase() === r.serverName.toLowerCase();
}

// Step 2: the cache, else the homeserver. Outages throw and are not remembered.
async function step2Ask(deps: RoleDeps, r: RoleRequest): Promise<boolean> {
  const cached = deps.adminStatus.get(r.serverName, r.user.token, r.user.userId);
  if (cached !== undefined) return cached;
  const isAdmin = await deps.homeserver.isUserAdmin(r.domain.homeserver, r.user.token, r.user.userId, {
    timeoutMs: r.domain.timeouts.clientServerTimeoutSeconds * 1000,
    forwardedFor: r.remoteAddress,
    log: r.log, // an unreachable homeserver is logged with this request's ID
  });
  deps.adminStatus.set(r.serverName, r.user.token, r.user.userId, isAdmin);
  return isAdmin;
}
