import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

// fetch() for tests, over node:http with a keep-alive Agent. Node's own fetch (undici) quietly
// retries an idempotent request when a reused connection closes before any answer, which hid
// a server that dropped every request following a HEAD on the same connection. node:http does
// not retry: such a request fails with "socket hang up", as it does for nginx's upstream
// keepalive. Every test going through TestRepo.fetch therefore also tests connection reuse.

export type TestFetch = (url: string, init?: RequestInit) => Promise<Response>;

/** How long an idle connection stays in the pool: under the server's idle close (uWS closes an
 * HTTP connection after about 10 s without a request), as a proxy's upstream keepalive_timeout
 * must be. A longer one races the server's close: when a test's event loop is busy (a second
 * server starting in-process) the FIN waits unread while the next request is written onto the
 * closed connection, and it fails with ECONNRESET, which is the client's doing, not the server's. */
const POOL_IDLE_MS = 4000;

/** A keep-alive Agent whose idle connections close after POOL_IDLE_MS; a connection in use
 * has no timeout (slow-reader tests hold one for longer). */
export class PoolAgent extends Agent {
  constructor() {
    super({ keepAlive: true });
  }

  // @types/node declares this void; Node's Agent returns whether the socket may be kept.
  override keepSocketAlive(socket: Socket): void {
    const keep = super.keepSocketAlive(socket) as unknown as boolean;
    socket.setTimeout(POOL_IDLE_MS);
    return keep as unknown as void;
  }

  override reuseSocket(socket: Socket, req: ClientRequest): void {
    socket.setTimeout(0);
    super.reuseSocket(socket, req);
  }
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

/** The request body as something node:http can write: bytes, or a stream for streamed bodies. */
async function bodyOf(body: RequestInit['body']): Promise<Buffer | Readable | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof Blob) return Buffer.from(await body.arrayBuffer());
  if (body instanceof ReadableStream) return Readable.fromWeb(body as import('node:stream/web').ReadableStream);
  if (body instanceof Readable) return body;
  throw new TypeError(`keep-alive fetch: unsupported body type ${Object.prototype.toString.call(body)}`);
}

async function responseOf(res: IncomingMessage, method: string): Promise<Response> {
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const status = res.statusCode ?? 0;
  const bodiless = method === 'HEAD' || NULL_BODY_STATUS.has(status);
  if (bodiless) {
    // Nothing to read: wait until the socket is back in the pool, so the caller's next request
    // reuses this very connection (that is the point) instead of racing it with a new one.
    res.resume();
    await new Promise<void>((r) => (res.complete ? r() : res.once('end', () => r())));
    await new Promise((r) => setImmediate(r));
  }
  const body = bodiless ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
  return new Response(body, { status, statusText: res.statusMessage ?? '', headers });
}

function once(
  agent: Agent,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | Readable | undefined,
  signal: AbortSignal | null | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent, signal: signal ?? undefined }, resolve);
    req.on('error', (e) => reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: e })));
    if (body instanceof Readable) {
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end(body);
  });
}

export function keepAliveFetch(agent: Agent): TestFetch {
  return async (input, init = {}) => {
    let url = new URL(input);
    let method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    let body = await bodyOf(init.body);
    for (let hops = 0; ; hops++) {
      if (url.protocol !== 'http:') return fetch(url, { ...init, method, headers, body: body as BodyInit | undefined });
      const res = await once(agent, url, method, headers, body, init.signal);
      const location = res.headers.location;
      if (!REDIRECT_STATUS.has(res.statusCode ?? 0) || !location || init.redirect === 'manual')
        return responseOf(res, method);
      res.resume();
      if (init.redirect === 'error')
        throw new TypeError('fetch failed', { cause: new Error(`redirect to ${location}`) });
      if (hops >= 20) throw new TypeError('fetch failed', { cause: new Error('too many redirects') });
      if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
        delete headers['content-length'];
        delete headers['content-type'];
      }
      const next = new URL(location, url);
      if (next.origin !== url.origin) delete headers['authorization'];
      url = next;
    }
  };
}
