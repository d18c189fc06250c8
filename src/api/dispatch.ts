import { isIP } from 'node:net';
import { Errors } from '../errors.js';
import type { HttpRequest, Result } from '../http/types.js';
import { json } from '../http/types.js';
import { authenticate } from './auth.js';
import { limited } from './rate-limit.js';
import { IpRangeList } from '../net/ip-ranges.js';
import { resolveHost } from './hosts.js';
import { Router } from './router.js';
import { UNKNOWN_HOST } from '../metrics/media-metrics.js';
import { methodLabel } from '../metrics/http-metrics.js';
import type { Ctx, Route, Services } from './services.js';

let requestCounter = 0;

/** Probes and the version answer are never rate limited (load balancers, monitoring). */
const NEVER_LIMITED = new Set(['healthz', 'readyz', 'version']);

/**
 * The client's address: what rate limits key on and what we tell the homeserver the request
 * came from (X-Forwarded-For on whoami, logout, versions). The socket's peer, unless the peer
 * is a proxy we trust: with repo.trustAnyForwardedAddress, the first hop of X-Forwarded-For
 * (MMR's trustAnyForward); from a peer in repo.trustedProxies, the last hop that is not itself
 * a trusted proxy (hops further left were written by the client and prove nothing). From any
 * other peer the header is ignored, so a client cannot pick its own rate-limit bucket.
 */
export function clientAddress(req: HttpRequest, trustAny: boolean, proxies: IpRangeList | null = null): string {
  const xff = req.headers['x-forwarded-for'];
  if (xff === undefined) return req.remoteAddress;
  if (trustAny) {
    const first = xff.split(',')[0]?.trim();
    return first && isIP(first) ? first : req.remoteAddress;
  }
  if (proxies === null || !proxies.contains(req.remoteAddress)) return req.remoteAddress;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim();
    if (!isIP(hop)) return req.remoteAddress; // a malformed chain: trust none of it
    if (i === 0 || !proxies.contains(hop)) return hop;
  }
  return req.remoteAddress;
}

/** repo.trustedProxies parsed once per list (a reload hands over a new array). */
let proxiesOf: readonly string[] | null = null;
let proxies: IpRangeList | null = null;
function trustedProxies(list: readonly string[]): IpRangeList | null {
  if (list !== proxiesOf) {
    proxiesOf = list;
    proxies = list.length ? IpRangeList.parse(list) : null;
  }
  return proxies;
}

/** A copy of the request with another client address, every field named (no spread: that
 * would parse the lazy query on the hot path and copy fields we never read). */
function withAddress(req: HttpRequest, remoteAddress: string): HttpRequest {
  return {
    method: req.method,
    path: req.path,
    rawQuery: req.rawQuery,
    get query() {
      return req.query;
    },
    headers: req.headers,
    remoteAddress,
    body: req.body,
    aborted: req.aborted,
    onAbort: req.onAbort,
    labels: req.labels,
    requestId: req.requestId,
  };
}

// Request flow before a handler runs: OPTIONS short-circuit, route match (404/405),
// Host → homeserver (502 when unknown), authentication, then the handler.
/**
 * `thread`: this HTTP thread's number and the process's count. Request IDs stay unique across
 * the threads of one process (each has its own counter): thread i of n hands out the numbers
 * that leave i when divided by n.
 */
export function createDispatcher(svc: Services, routes: Route[], thread = { index: 0, count: 1 }) {
  const router = new Router(routes);

  async function dispatch(req: HttpRequest): Promise<Result> {
    // CORS preflight: answered with the common headers only, no endpoint logic (spec).
    if (req.method === 'OPTIONS') return json({});
    const m = router.match(req.method, req.path);
    if (m.kind === 'not-found') throw Errors.unrecognized();
    if (m.kind === 'method-not-allowed') throw Errors.methodNotAllowed();
    const cfg = svc.config();
    const host = resolveHost(cfg, req.headers);
    const requestId = `REQ-${(++requestCounter * thread.count + thread.index).toString(36)}`;
    req.requestId = requestId;
    // Metric labels: the route's name and a configured server name, never the raw Host.
    req.labels = { action: m.route.name, host: 'unknown' in host ? UNKNOWN_HOST : host.name };
    const method = methodLabel(req.method);
    // Host-less routes (health probes, often by IP) are ordinary requests, not invalid ones.
    if ('unknown' in host && !m.route.hostless) svc.metrics.invalidHttpRequests.inc([m.route.name, method]);
    else svc.metrics.httpRequests.inc([req.labels.host, req.labels.action, method]);
    if ('unknown' in host) {
      if (!m.route.hostless) {
        svc.log.warn('request for a Host that is not a configured homeserver', {
          requestId,
          host: host.unknown,
          configured: [...cfg.domains.keys()].join(', '),
          hint: 'check the reverse proxy passes Host (or X-Forwarded-Host with repo.useForwardedHost)',
        });
        throw Errors.badGateway(`This media repository does not serve the homeserver '${host.unknown}'`);
      }
    }
    const [name, domain] = 'unknown' in host ? ['', cfg.domains.values().next().value!] : [host.name, host.domain];
    const log = svc.log.child({ requestId, host: name });
    const repo = cfg.global.repo;
    const addr = clientAddress(req, repo.trustAnyForwardedAddress, trustedProxies(repo.trustedProxies));
    const ctxReq = addr === req.remoteAddress ? req : withAddress(req, addr);
    const ctx: Ctx = { req: ctxReq, params: m.params, serverName: name, domain, user: null, svc, log };
    // Logged before authentication, so rejected requests have their line too. The query goes
    // through the logger's redaction (access_token values never reach a line).
    if (log.enabled('debug')) {
      log.debug('request', {
        method: req.method,
        path: req.path,
        query: req.rawQuery,
        route: m.route.name,
        remoteAddr: addr,
        userAgent: req.headers['user-agent'],
      });
    }
    // The one check rate limiting costs when it is off.
    if (cfg.global.rateLimit.enabled && !NEVER_LIMITED.has(m.route.name)) return limited(ctx, m.route, addr);
    // Authenticate before validating anything else: clients and Complement expect 401 first.
    ctx.user = await authenticate(ctx, m.route.auth);
    return m.route.handler(ctx);
  }

  return { dispatch, wantsBody: (method: string, path: string) => router.wantsBody(method, path) };
}
