// The one outbound HTTP client (federation media, signing keys, later URL previews). It exists
// because MMR shipped SSRF through redirects (CVE-2024-52602: redirect hops used a dialer with
// no deny list) and unbounded remote JSON (CVE-2024-52791). So: every address of every hop is
// resolved once and checked, the socket goes to that checked address itself (no second lookup,
// no DNS-rebinding window), and every body is capped and bound to one total deadline.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { Transform, type Readable } from 'node:stream';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { addressAllowed, type IpRangeList } from './ip-ranges.js';
import { MediaRepoError, outboundCode, type OutboundCode } from '../errors.js';

export type OutboundKind =
  'denied_address' | 'dns' | 'connect' | 'timeout' | 'too_large' | 'too_many_redirects' | 'bad_url' | 'tls' | 'http';

/** `kind` says what failed in words the messages use; `code` is its family code (errors.ts). */
export class OutboundError extends MediaRepoError<OutboundCode> {
  constructor(
    readonly kind: OutboundKind,
    message: string,
  ) {
    super(outboundCode(kind), message);
    this.name = 'OutboundError';
  }
}

export interface SafeRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  allow: IpRangeList;
  deny: IpRangeList;
  /** Total deadline for DNS + connect + headers + body (all hops), ms. */
  timeoutMs: number;
  /** Body cap in bytes, checked against Content-Length and while streaming. */
  maxBytes: number;
  /** 0 = return the 3xx itself; default 5. */
  maxRedirects?: number;
  /** Connect here instead of the URL's host (server discovery); applies while hops stay on the
   * original origin. Host header and certificate name stay the URL's host unless overridden. */
  connectTo?: { host: string; port: number };
  tlsServername?: string;
  rejectUnauthorized?: boolean;
  /** Every address of a host. Default: dns.promises.lookup(host, { all: true, verbatim: true }). */
  resolve?: (host: string) => Promise<string[]>;
  signal?: AbortSignal;
}

export interface SafeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Final URL after redirects. */
  url: string;
  /** The checked address the socket was connected to. */
  remoteAddress: string;
  /** Capped, deadline-bound body; errors with OutboundError('too_large' | 'timeout' | 'connect').
   * destroy() it if unused. A no-op 'error' listener is attached so a body nobody reads can
   * never crash the process; pipeline() and for-await still see the error. */
  body: Readable;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

async function defaultResolve(host: string): Promise<string[]> {
  return (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/** Races a step against the shared abort signal so a hung resolver cannot outlive the deadline. */
function raced<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Resolves (or takes the literal), refuses if ANY address is denied, returns the one to dial. */
async function checkedAddress(host: string, opts: SafeRequestOptions, signal: AbortSignal): Promise<string> {
  const literal = host.startsWith('[') ? host.slice(1, -1) : host;
  let addrs: string[];
  if (isIP(literal)) addrs = [literal];
  else {
    try {
      addrs = await raced((opts.resolve ?? defaultResolve)(host), signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new OutboundError('dns', `cannot resolve ${host}: ${(err as Error).message}`);
    }
    if (addrs.length === 0) throw new OutboundError('dns', `no addresses for ${host}`);
  }
  // One private address among public ones is enough to refuse: which one the OS or a retry
  // would pick is not ours to predict.
  const bad = addrs.find((a) => !addressAllowed(a, opts.allow, opts.deny));
  if (bad !== undefined) throw new OutboundError('denied_address', `${host} resolves to a denied address (${bad})`);
  return addrs[0];
}

function errorKind(err: NodeJS.ErrnoException): OutboundKind {
  const c = err.code ?? '';
  if (
    /^(ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|ERR_OSSL)/.test(c) ||
    /certificate|SSL|TLS/i.test(err.message)
  )
    return 'tls';
  if (c.startsWith('HPE_')) return 'http';
  return 'connect';
}

/** One hop: connect to the pinned address and wait for the response headers. */
function sendOnce(
  url: URL,
  address: string,
  port: number,
  headers: Record<string, string>,
  method: string,
  certName: string,
  opts: SafeRequestOptions,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request({
      host: address, // an IP literal: no lookup happens, so nothing can rebind between check and connect
      port,
      method,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
      ...(secure
        ? {
            servername: isIP(certName) ? undefined : certName, // SNI must not be an IP (RFC 6066)
            rejectUnauthorized: opts.rejectUnauthorized ?? true,
            // Verify against the intended name, not the dialled IP.
            checkServerIdentity: (_h: string, cert: PeerCertificate) => checkServerIdentity(certName, cert),
          }
        : {}),
    });
    const onAbort = (): void => {
      req.destroy(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('response', (res) => {
      signal.removeEventListener('abort', onAbort);
      res.on('error', () => {}); // redirect and refused bodies are destroyed unread; never crash on them
      resolve(res);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) return reject(signal.reason);
      reject(err instanceof OutboundError ? err : new OutboundError(errorKind(err), `${url.origin}: ${err.message}`));
    });
    req.end();
  });
}

/** Wraps the response in a byte-counting stream that also dies with the deadline. */
function cappedBody(res: IncomingMessage, maxBytes: number, signal: AbortSignal, done: () => void): Readable {
  const declared = Number(res.headers['content-length']);
  let total = 0;
  const body = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > maxBytes) return cb(new OutboundError('too_large', `response body exceeds ${maxBytes} bytes`));
      cb(null, chunk);
    },
    read(size) {
      // Content-Length already over the cap: fail on first read rather than now, so the error
      // surfaces where the caller consumes the body (and the bytes are never downloaded).
      if (declared > maxBytes)
        this.destroy(new OutboundError('too_large', `Content-Length ${declared} exceeds ${maxBytes} bytes`));
      else Transform.prototype._read.call(this, size);
    },
  });
  body.on('error', () => {}); // see SafeResponse.body
  const onAbort = (): void => {
    body.destroy(signal.reason);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  body.once('close', () => {
    signal.removeEventListener('abort', onAbort);
    res.destroy();
    done();
  });
  if (declared > maxBytes) {
    res.destroy();
    return body;
  }
  const lost = (): void => {
    body.destroy(new OutboundError('connect', 'connection lost while reading the body'));
  };
  res.once('error', lost);
  res.once('aborted', lost);
  res.pipe(body);
  return body;
}

export async function safeRequest(input: string | URL, opts: SafeRequestOptions): Promise<SafeResponse> {
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new OutboundError('timeout', `outbound request exceeded ${opts.timeoutMs} ms`)),
    opts.timeoutMs,
  );
  const onOuter = (): void => ac.abort(opts.signal?.reason ?? new Error('aborted'));
  if (opts.signal?.aborted) onOuter();
  else opts.signal?.addEventListener('abort', onOuter, { once: true });
  const finish = (): void => {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuter);
  };
  try {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      throw new OutboundError('bad_url', `invalid URL ${String(input)}`);
    }
    const origin = url.origin;
    let method = (opts.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
    const maxRedirects = opts.maxRedirects ?? 5;
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new OutboundError('bad_url', `refusing ${url.protocol} URL`);
      const sameOrigin = url.origin === origin;
      // connectTo / tlsServername describe the discovered server: only for its own origin.
      const target = sameOrigin && opts.connectTo ? opts.connectTo : null;
      const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const port = target ? target.port : Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      const address = await checkedAddress(target ? target.host : url.hostname, opts, ac.signal);
      const certName = (sameOrigin && opts.tlsServername) || hostname;
      const res = await sendOnce(url, address, port, { host: url.host, ...headers }, method, certName, opts, ac.signal);
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode ?? 0) && location !== undefined && maxRedirects > 0) {
        res.destroy(); // redirect bodies are never read
        if (hop >= maxRedirects) throw new OutboundError('too_many_redirects', `more than ${maxRedirects} redirects`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new OutboundError('bad_url', `invalid redirect target ${location}`);
        }
        if (next.origin !== url.origin) {
          // Credentials and an explicit Host belong to the origin they were given for; once
          // dropped they stay dropped even if a later hop comes back.
          delete headers.authorization;
          delete headers.cookie;
          delete headers.host;
        }
        if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
          if (method !== 'HEAD') method = 'GET';
        }
        url = next;
        continue;
      }
      const body = cappedBody(res, opts.maxBytes, ac.signal, finish);
      return { status: res.statusCode ?? 0, headers: res.headers, url: url.href, remoteAddress: address, body };
    }
  } catch (err) {
    finish();
    throw err;
  }
}

/** GET + JSON parse under a byte cap (default 64 KiB). Non-2xx responses throw
 * OutboundError('http') unless listed in acceptStatus; invalid JSON throws 'http' too. */
export async function safeJson(
  input: string | URL,
  opts: Omit<SafeRequestOptions, 'maxBytes'> & { maxBytes?: number; acceptStatus?: number[] },
): Promise<{ status: number; headers: IncomingHttpHeaders; json: unknown }> {
  const res = await safeRequest(input, {
    ...opts,
    maxBytes: opts.maxBytes ?? 64 * 1024,
    headers: { accept: 'application/json', ...opts.headers },
  });
  const ok = (res.status >= 200 && res.status < 300) || (opts.acceptStatus ?? []).includes(res.status);
  if (!ok) {
    res.body.destroy();
    throw new OutboundError('http', `${res.url} answered HTTP ${res.status}`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(chunk as Buffer);
  try {
    return { status: res.status, headers: res.headers, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    throw new OutboundError('http', `${res.url} sent invalid JSON`);
  }
}
