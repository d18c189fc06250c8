import { Errors, type MatrixError } from '../errors.js';
import type { HomeserverConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';

export interface WhoAmI {
  userId: string;
  isGuest: boolean;
}

export interface CallOptions {
  timeoutMs: number;
  forwardedFor: string;
  /** The request's logger (it carries the request ID): upstream failures are logged through it. */
  log?: Logger;
}

/** After backoffAt consecutive failures, calls fail fast for this long (circuit open). */
const OPEN_CIRCUIT_MS = 30_000;

/** A failing homeserver is logged once per this window; the failures in between are counted. */
export const FAILURE_LOG_INTERVAL_MS = 60_000;

/** The reason under fetch's "fetch failed": `ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:1)`. */
function fetchFailure(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const message = typeof cause?.message === 'string' ? cause.message : (e as Error).message;
  return code && message !== code ? `${code} (${message})` : code || message;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

// Calls to a homeserver's client-server API (whoami, logout, versions) and admin API (is this
// user an admin, a room's media, users' avatars). Unreachable or slow homeservers become
// 502/504 Matrix errors within the timeout, never a hanging request. Each such failure is one
// the operator must see (every authenticated request fails with it), so it is logged, once per
// homeserver per FAILURE_LOG_INTERVAL_MS so an outage is not a log flood.
export class HomeserverClient {
  private readonly failures = new Map<string, { count: number; openUntil: number }>();
  private readonly logged = new Map<string, { until: number; suppressed: number }>();

  /** Logs an upstream failure with the homeserver, its address, the cause and (from the request's
   * logger) the request ID, unless this homeserver's failure was logged within the interval. */
  private logFailure(hs: HomeserverConfig, opts: CallOptions, cause: string): void {
    if (!opts.log) return;
    const now = Date.now();
    const last = this.logged.get(hs.name);
    if (last && now < last.until) {
      last.suppressed++;
      return;
    }
    this.logged.set(hs.name, { until: now + FAILURE_LOG_INTERVAL_MS, suppressed: 0 });
    opts.log.warn('homeserver request failed; clients get 502/504 until it answers', {
      homeserver: hs.name,
      upstream: hostOf(hs.csApi),
      cause,
      ...(last?.suppressed ? { failuresSinceLastLine: last.suppressed } : {}),
    });
  }

  /** An upstream error that becomes the client's answer: logged, then thrown. */
  private fail(hs: HomeserverConfig, opts: CallOptions, cause: string, error: MatrixError): never {
    this.logFailure(hs, opts, cause);
    throw error;
  }

  private async call(
    hs: HomeserverConfig,
    method: string,
    path: string,
    token: string | null,
    opts: CallOptions,
    body?: string,
  ): Promise<Response> {
    const state = this.failures.get(hs.name);
    if (state && state.openUntil > Date.now()) {
      this.fail(
        hs,
        opts,
        `circuit open after ${hs.backoffAt} consecutive failures`,
        Errors.badGateway(`Homeserver ${hs.name} is failing; not retrying for a few seconds`),
      );
    }
    const headers: Record<string, string> = { 'X-Forwarded-For': opts.forwardedFor, 'X-Real-IP': opts.forwardedFor };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, hs.csApi.endsWith('/') ? hs.csApi : hs.csApi + '/'), {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(opts.timeoutMs),
        redirect: 'error',
      });
    } catch (e) {
      this.recordFailure(hs);
      const timedOut = (e as Error).name === 'TimeoutError';
      return timedOut
        ? this.fail(
            hs,
            opts,
            `no answer within ${opts.timeoutMs} ms (timeouts.clientServerTimeoutSeconds)`,
            Errors.gatewayTimeout(`Homeserver ${hs.name} did not answer within ${opts.timeoutMs} ms`),
          )
        : this.fail(hs, opts, fetchFailure(e), Errors.badGateway(`Homeserver ${hs.name} is unreachable`));
    }
    if (res.status >= 500) {
      this.recordFailure(hs);
      // Passed through (logout) or turned into a 502 (whoami): either way the homeserver failed.
      this.logFailure(hs, opts, `${method} ${path.split('?')[0]} answered HTTP ${res.status}`);
    } else {
      this.failures.delete(hs.name);
    }
    return res;
  }

  private recordFailure(hs: HomeserverConfig): void {
    const s = this.failures.get(hs.name) ?? { count: 0, openUntil: 0 };
    s.count++;
    if (hs.backoffAt > 0 && s.count >= hs.backoffAt) {
      s.openUntil = Date.now() + OPEN_CIRCUIT_MS;
      s.count = 0;
    }
    this.failures.set(hs.name, s);
  }

  /** GET /_matrix/client/v3/account/whoami, asserting `asUser` for appservices. */
  async whoami(hs: HomeserverConfig, token: string, asUser: string | null, opts: CallOptions): Promise<WhoAmI> {
    const q = asUser ? `?user_id=${encodeURIComponent(asUser)}` : '';
    const res = await this.call(hs, 'GET', `_matrix/client/v3/account/whoami${q}`, token, opts);
    const body = await readJson(res);
    if (res.status === 200 && typeof body.user_id === 'string') {
      return { userId: body.user_id, isGuest: body.is_guest === true };
    }
    if (res.status === 401) throw Errors.unknownToken(body.soft_logout === true);
    if (res.status === 403) throw Errors.homeserverForbidden(body);
    // A 5xx was logged by call(); anything else unexpected (404: csApi points at the wrong place) here.
    const error = Errors.badGateway(`Homeserver ${hs.name} answered whoami with HTTP ${res.status}`);
    if (res.status >= 500) throw error;
    this.fail(
      hs,
      opts,
      `whoami answered HTTP ${res.status}${typeof body.errcode === 'string' ? ` ${body.errcode}` : ''}`,
      error,
    );
  }

  /**
   * Whether `userId` is an admin of this homeserver, asked with the caller's own token. A
   * 5xx or an unreachable homeserver throws (502/504): an outage must neither demote nor promote.
   */
  async isUserAdmin(hs: HomeserverConfig, token: string, userId: string, opts: CallOptions): Promise<boolean> {
    const synapse = hs.adminApiKind === 'synapse';
    // Synapse's admin API answers {"admin": bool} about the named user, but only to an admin
    // (403 M_FORBIDDEN otherwise). The spec's whois is different: Synapse and Dendrite let any
    // user whois themselves, so asking about the caller proves nothing. Only a server admin may
    // whois another user, and Synapse answers an admin 200 even for a local user that does not
    // exist (400 for a user of another server), so a made-up local ID other than the caller's is
    // a probe that is 200 exactly for admins.
    const path = synapse
      ? `_synapse/admin/v1/users/${encodeURIComponent(userId)}/admin`
      : `_matrix/client/v3/admin/whois/${encodeURIComponent(whoisProbe(hs.name, userId))}`;
    const what = synapse ? 'the admin status check' : 'the admin whois probe';
    const res = await this.call(hs, 'GET', path, token, opts);
    const body = await readJson(res);
    if (res.status === 200) return synapse ? body.admin === true : true;
    if (res.status === 401 || res.status === 403 || res.status === 404) return false;
    this.unexpected(hs, opts, what, res.status, body);
  }

  /** Synapse's GET /_synapse/admin/v1/room/{roomId}/media: the mxc URIs used in a room. */
  async roomMedia(
    hs: HomeserverConfig,
    token: string,
    roomId: string,
    opts: CallOptions,
  ): Promise<{ local: string[]; remote: string[] }> {
    if (hs.adminApiKind !== 'synapse') {
      throw Errors.invalidParam("Listing a room's media needs homeservers[].adminApiKind: synapse");
    }
    const path = `_synapse/admin/v1/room/${encodeURIComponent(roomId)}/media`;
    const res = await this.call(hs, 'GET', path, token, opts);
    const body = await readJson(res, ADMIN_LIST_LIMIT);
    if (res.status !== 200) this.adminRefusal(hs, opts, "the room's media list", res.status, body);
    return { local: strings(body.local), remote: strings(body.remote) };
  }

  /**
   * Every user's avatar mxc URI, from Synapse's GET /_synapse/admin/v2/users paged by
   * next_token (deactivated users and guests included): the media Synapse's keep_profiles keeps.
   */
  async userAvatars(hs: HomeserverConfig, token: string, opts: CallOptions): Promise<Set<string>> {
    if (hs.adminApiKind !== 'synapse') {
      throw Errors.invalidParam("Listing users' avatars needs homeservers[].adminApiKind: synapse");
    }
    const avatars = new Set<string>();
    let from = '0';
    for (let page = 0; page < MAX_USER_PAGES; page++) {
      const q = `from=${encodeURIComponent(from)}&limit=${USER_PAGE_SIZE}&guests=true&deactivated=true`;
      const res = await this.call(hs, 'GET', `_synapse/admin/v2/users?${q}`, token, opts);
      const body = await readJson(res, ADMIN_LIST_LIMIT);
      if (res.status !== 200) this.adminRefusal(hs, opts, 'the user list', res.status, body);
      for (const u of Array.isArray(body.users) ? body.users : []) {
        const url = (u as { avatar_url?: unknown } | null)?.avatar_url;
        if (typeof url === 'string' && url.startsWith('mxc://')) avatars.add(url);
      }
      const next = body.next_token;
      if ((typeof next !== 'string' && typeof next !== 'number') || String(next) === '') return avatars;
      from = String(next);
    }
    // A homeserver that never stops paging (or a broken proxy) must not keep us looping.
    this.fail(
      hs,
      opts,
      `the user list still had a next_token after ${MAX_USER_PAGES} pages`,
      Errors.badGateway(`Homeserver ${hs.name} kept paging its user list past ${MAX_USER_PAGES} pages`),
    );
  }

  /** An admin list call's non-200 answer as the client's error. */
  private adminRefusal(
    hs: HomeserverConfig,
    opts: CallOptions,
    what: string,
    status: number,
    body: Record<string, unknown>,
  ): never {
    const reason = typeof body.error === 'string' ? `: ${body.error}` : '';
    if (status === 403) throw Errors.forbidden(`Homeserver ${hs.name} refused ${what}${reason}`);
    if (status === 404) throw Errors.notFound(`Homeserver ${hs.name} found nothing for ${what}${reason}`);
    this.unexpected(hs, opts, what, status, body);
  }

  /** An answer we cannot read as yes or no: 502, logged (a 5xx was logged by call() already). */
  private unexpected(
    hs: HomeserverConfig,
    opts: CallOptions,
    what: string,
    status: number,
    body: Record<string, unknown>,
  ): never {
    const error = Errors.badGateway(`Homeserver ${hs.name} answered ${what} with HTTP ${status}`);
    if (status >= 500) throw error;
    const errcode = typeof body.errcode === 'string' ? ` ${body.errcode}` : '';
    this.fail(hs, opts, `${what} answered HTTP ${status}${errcode}`, error);
  }

  /** Proxies a request and returns status and JSON body as the homeserver gave them. */
  async proxyJson(
    hs: HomeserverConfig,
    method: string,
    path: string,
    token: string | null,
    opts: CallOptions,
    body?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await this.call(hs, method, path, token, opts, body);
    return { status: res.status, body: await readJson(res) };
  }
}

/** Admin lists (a big room's media, a page of users) are larger than the usual answers. */
const ADMIN_LIST_LIMIT = 16 * 1024 * 1024;
const USER_PAGE_SIZE = 500;
const MAX_USER_PAGES = 1000;

/** A user of this server that is not the caller (see isUserAdmin); it need not exist. */
function whoisProbe(serverName: string, caller: string): string {
  const probe = `@media-repo-admin-probe:${serverName}`;
  return probe === caller ? `@media-repo-admin-probe-2:${serverName}` : probe;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Homeserver answers are small; cap them so a broken proxy cannot feed us megabytes. */
async function readJson(res: Response, limit = 64 * 1024): Promise<Record<string, unknown>> {
  const reader = res.body?.getReader();
  if (!reader) return {};
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > limit) {
      await reader.cancel();
      throw Errors.badGateway('Homeserver response too large');
    }
    parts.push(value);
  }
  try {
    const v = JSON.parse(Buffer.concat(parts).toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}
