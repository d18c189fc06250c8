import type { HttpRequest } from '../http/types.js';
import { secondsSince, type MediaMetrics } from './media-metrics.js';

// The HTTP server's observer: one response counted and timed per request, after the last byte
// (or the client's hang-up). Labels come from the dispatcher (route name, configured host);
// a request that matched no route is "unrecognized", so odd paths cannot grow the label set.

/** nginx's code for "client closed the request before the response was sent". */
const CLIENT_CLOSED = '499';
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/** Any method string a client sends would otherwise become a label value. */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}

export function observeHttp(m: MediaMetrics) {
  return (req: HttpRequest, status: number | undefined, startNs: bigint): void => {
    const action = req.labels?.action ?? 'unrecognized';
    const host = req.labels?.host ?? '';
    const method = methodLabel(req.method);
    m.httpResponses.inc([host, action, method, status === undefined ? CLIENT_CLOSED : String(status)]);
    m.httpResponseTime.observe([host, action, method], secondsSince(startNs));
  };
}
