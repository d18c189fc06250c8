import type { HttpResponse, HttpRequest as UwsRequest } from 'uWebSockets.js';
import { UwsBodySource } from './body.js';
import type { HttpRequest, Result } from './types.js';
import { MatrixError, Errors } from '../errors.js';
import { sendError, sendResult, type ResponseState } from './respond.js';
import type { Logger } from '../logging/logger.js';
import type { InFlightRequests } from './in-flight.js';

// The per-request function server.ts registers with uWS, kept apart from the listener so that
// in-process.ts can drive the very same code with an in-memory request/response pair.

export interface RequestHandlerOptions {
  log: Logger;
  /** Decides from method + path (before any await) whether the body will be streamed. */
  wantsBody(method: string, path: string): boolean;
  dispatch(req: HttpRequest): Promise<Result>;
  /** Told of every answered request: the status sent (none when the client left first). */
  observe?(req: HttpRequest, status: number | undefined, startNs: bigint): void;
}

/** The part of uWS's HttpRequest this handler reads (it is only valid until the first await). */
export type UwsRequestHead = Pick<
  UwsRequest,
  'getMethod' | 'getCaseSensitiveMethod' | 'getUrl' | 'getQuery' | 'forEach'
>;

export type UwsHandler = (res: HttpResponse, ureq: UwsRequestHead) => void;

/**
 * RFC 9112 §6.1-6.3: a request with both Transfer-Encoding and Content-Length is a smuggling
 * shape (400); a coding other than chunked (gzip, deflate, …) would be stored still encoded,
 * since nothing here decodes it (501, RFC 9112 §6.1). uWS 20.30 itself closes some of these
 * without a word before they reach JS; the ones it lets through are answered here.
 */
function transferCodingError(cl: string | undefined, te: string | undefined): MatrixError | null {
  if (te === undefined) return null;
  if (cl !== undefined) return Errors.invalidParam('Content-Length and Transfer-Encoding together: send one of them');
  const codings = te
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');
  if (codings.length === 1 && codings[0] === 'chunked') return null;
  return Errors.unsupportedCoding(te);
}

// Everything is copied out of the uWS HttpRequest before the first await, onAborted is
// registered first, and results go out through the responder.
export function createRequestHandler(
  opts: RequestHandlerOptions,
  active: InFlightRequests,
  draining: () => boolean,
): UwsHandler {
  async function run(
    res: HttpResponse,
    st: ResponseState,
    req: HttpRequest,
    body: UwsBodySource | null,
  ): Promise<void> {
    try {
      const result = await opts.dispatch(req);
      if (body && !body.complete) st.closeAfter = true;
      await sendResult(res, st, req, result);
    } catch (e) {
      if (body && !body.complete) st.closeAfter = true;
      const err = e instanceof MatrixError ? e : Errors.unknown();
      // A client that hangs up mid-body is not a server failure: no error line for it.
      if (!(e instanceof MatrixError) && !st.aborted)
        opts.log.error('request failed', {
          requestId: req.requestId,
          method: req.method,
          path: req.path,
          error: e as Error,
        });
      if (!st.done && !st.aborted) sendError(res, st, req, err);
    }
  }

  return (res, ureq) => {
    // While draining, a keep-alive connection gets its answer and is then closed, so the
    // drain ends with the requests in flight instead of whatever the client sends next.
    const st: ResponseState = { aborted: false, done: false, closeAfter: draining(), onAbort: [] };
    const abortCbs: (() => void)[] = [];
    res.onAborted(() => {
      st.aborted = true;
      for (const cb of abortCbs) cb();
      for (const cb of st.onAbort) cb();
    });
    const method = ureq.getCaseSensitiveMethod ? ureq.getCaseSensitiveMethod() : ureq.getMethod().toUpperCase();
    const path = ureq.getUrl();
    const rawQuery = ureq.getQuery() ?? '';
    const headers: Record<string, string> = {};
    ureq.forEach((k, v) => {
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    });
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    let body: UwsBodySource | null = null;
    const upper = method.toUpperCase();
    const cl = headers['content-length'];
    // RFC 9112 §6.3: a Content-Length that is not one number (duplicates arrive joined, "20, 30")
    // is invalid framing. uWS frames by the first value, so the rest would be read as another
    // request: answer 400 and close instead.
    const badLength = cl !== undefined && !/^\d+$/.test(cl);
    const framingError = badLength
      ? Errors.invalidParam('Content-Length: expected a single non-negative integer')
      : transferCodingError(cl, headers['transfer-encoding']);
    if (!framingError && upper !== 'GET' && upper !== 'HEAD' && upper !== 'OPTIONS' && opts.wantsBody(upper, path)) {
      body = new UwsBodySource(res, cl !== undefined ? Number(cl) : null, () => st.aborted);
      abortCbs.push(() => body!.abort());
    }
    let query: URLSearchParams | undefined;
    const req: HttpRequest = {
      method: upper,
      path,
      rawQuery,
      // Parsed on first use: most hot requests (downloads without parameters) never ask.
      get query() {
        return (query ??= new URLSearchParams(rawQuery));
      },
      headers,
      remoteAddress,
      body,
      aborted: () => st.aborted,
      onAbort: (cb) => abortCbs.push(cb),
    };
    if (framingError) {
      // The body's framing is unknown or not ours to decode: nothing after it on this
      // connection can be trusted to be a request of its own.
      st.closeAfter = true;
      sendError(res, st, req, framingError);
      return;
    }
    const startNs = process.hrtime.bigint();
    const entry = active.add(res, st, req, startNs);
    run(res, st, req, body)
      .finally(() => {
        active.delete(entry);
        opts.observe?.(req, st.status, startNs);
      })
      // run() answers every failure itself; only writing that answer can throw (a response uWS
      // has already closed), and that must not become an unhandled rejection.
      .catch((e: Error) => opts.log.warn('could not send an error answer', { requestId: req.requestId, error: e }));
  };
}
