import { isIP } from 'node:net';
import { Errors } from '../errors.js';
import type { HttpRequest, Result } from '../http/types.js';
import { json } from '../http/types.js';
import { authenticate } from './auth.js';
import { resolveHost } from './hosts.js';
import { Router } from './router.js';
import { UNKNOWN_HOST } from '../metrics/media-metrics.js';
import { methodLabel } from '../metrics/http-metrics.js';
import type { Ctx, Route, Services } from './services.js';

let requestCounter = 0;

/**
 * The address we tell the homeserver the request came from (X-Forwarded-For on whoami,
 * logout, versions): the socket's peer, or with repo.trustAnyForwardedAddress the first hop
 * of the client's X-Forwarded-For when it is an IP address (MMR's trustAnyForward).
 */
export function clientAddress(req: HttpRequest, trustAny: boolean): string {
  if (trustAny) {
    const first = req.headers['x-forwarded-for']?.split(',')[0]?.trim();
    if (first && isIP(first)) return first;
  }
  return req.remoteAddress;
}

// Request flow before a handler runs: OPTIONS short-circuit, route match (404/405),
// Host → homeserver (502 when unknown), authentication, then the handler.
export function createDispatcher(svc: Services, routes: Route[]) {
  const router = new Router(routes);

  async function dispatch(req: HttpRequest): Promise<Result> {
    // CORS preflight: answered with the common headers only, no endpoint logic (spec).
    if (req.method === 'OPTIONS') return json({});
    const m = router.match(req.method, req.path);
    if (m.kind === 'not-found') throw Errors.unrecognized();
    if (m.kind === 'method-not-allowed') throw Errors.methodNotAllowed();
    const cfg = svc.config();
    const host = resolveHost(cfg, req.headers);
    const requestId = `REQ-${(++requestCounter).toString(36)}`;
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
    const addr = clientAddress(req, cfg.global.repo.trustAnyForwardedAddress);
    const ctxReq = addr === req.remoteAddress ? req : { ...req, remoteAddress: addr };
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
    // Authenticate before validating anything else: clients and Complement expect 401 first.
    ctx.user = await authenticate(ctx, m.route.auth);
    return m.route.handler(ctx);
  }

  return { dispatch, wantsBody: (method: string, path: string) => router.wantsBody(method, path) };
}
