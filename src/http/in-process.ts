import type { HttpResponse, RecognizedString } from 'uWebSockets.js';
import type { UwsHandler, UwsRequestHead } from './handle-request.js';

// One request through the server's own per-request function (handle-request.ts, then the
// dispatcher and respond.ts) with an in-memory stand-in for uWS's request and response, like
// hono's app.request(). For tests and tools where socket behaviour does not matter: routing,
// status codes, headers, bodies. Nothing here is a socket: every write is taken whole (no
// backpressure, onWritable never fires), there is no keep-alive or pipelining, no parser and
// no framing of our own. Tests of streaming, backpressure, aborts, keep-alive, slow clients
// or request framing must keep using the real socket.

export type InProcessInput =
  Request | { method?: string; url: string; headers?: Record<string, string>; body?: Buffer | string | Uint8Array };

export interface InProcessOptions {
  /** What the server sees as the client's address; 127.0.0.1 unless given. */
  remoteAddress?: string;
  /** Aborting stands in for the client hanging up: onAborted runs and the promise rejects. */
  signal?: AbortSignal;
}

/** Body chunk size, as a socket would split an upload: more than one chunk for anything past
 * 64 KiB, so the body source's early buffer and pause/resume are used as on a socket. */
const CHUNK = 64 * 1024;
const NULL_BODY_STATUS = new Set([204, 205, 304]);

interface Head {
  method: string;
  path: string;
  query: string;
  /** Lower-case names, in order, as uWS's forEach gives them. */
  headers: [string, string][];
  body: Buffer | null;
}

async function headOf(input: InProcessInput): Promise<Head> {
  const isRequest = input instanceof Request;
  const given: [string, string][] = isRequest ? [...input.headers] : Object.entries(input.headers ?? {});
  const headers = given.map(([k, v]): [string, string] => [k.toLowerCase(), v]);
  // A path is taken verbatim (as a client on a socket would send it); a full URL is parsed.
  let path: string, query: string;
  if (input.url.startsWith('/')) {
    const q = input.url.indexOf('?');
    [path, query] = q < 0 ? [input.url, ''] : [input.url.slice(0, q), input.url.slice(q + 1)];
  } else {
    const u = new URL(input.url);
    [path, query] = [u.pathname, u.search.slice(1)];
    if (!headers.some(([k]) => k === 'host')) headers.push(['host', u.host]);
  }
  let body: Buffer | null = null;
  if (isRequest) body = input.body ? Buffer.from(await input.arrayBuffer()) : null;
  else if (input.body !== undefined) body = Buffer.from(input.body);
  // What any client sends with a body; a test of other framing belongs on the socket.
  if (body && !headers.some(([k]) => k === 'content-length' || k === 'transfer-encoding'))
    headers.push(['content-length', String(body.length)]);
  return { method: (input.method ?? 'GET').toUpperCase(), path, query, headers, body };
}

function bytes(x: RecognizedString): Buffer {
  if (typeof x === 'string') return Buffer.from(x);
  // A copy: respond.ts reuses its read buffers as soon as a write returns.
  return x instanceof ArrayBuffer
    ? Buffer.from(new Uint8Array(x))
    : Buffer.from(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
}

/** The uWS HttpResponse methods the server calls; the in-memory response must have them all. */
type Used =
  | 'onAborted'
  | 'onData'
  | 'onWritable'
  | 'pause'
  | 'resume'
  | 'getRemoteAddressAsText'
  | 'cork'
  | 'writeStatus'
  | 'writeHeader'
  | 'write'
  | 'end'
  | 'endWithoutBody'
  | 'tryEnd'
  | 'getWriteOffset'
  | 'close';
type ResponseSubset = {
  [K in Used]: (
    ...a: Parameters<HttpResponse[K]>
  ) => ReturnType<HttpResponse[K]> extends HttpResponse ? unknown : ReturnType<HttpResponse[K]>;
};

class MemoryResponse implements ResponseSubset {
  status = 200;
  statusText = 'OK';
  readonly headers: [string, string][] = [];
  private readonly parts: Buffer[] = [];
  private written = 0;
  private chunked = false;
  private ended = false;
  private gone = false;
  private abortCb: (() => void) | null = null;
  private dataCb: ((chunk: ArrayBuffer, isLast: boolean) => void) | null = null;
  private paused = false;
  private pumpScheduled = false;
  private delivered = 0;
  private bodyDone = false;

  constructor(
    private readonly remote: string,
    private readonly body: Buffer | null,
    private readonly settle: (err: Error | null) => void,
  ) {}

  get bodyBytes(): Buffer {
    return Buffer.concat(this.parts);
  }

  /** uWS throws on any use of a response whose client is gone; so does this. */
  private live(): void {
    if (this.gone) throw new Error('Invalid access of discarded or aborted response');
  }

  private open(): void {
    this.live();
    if (this.ended) throw new Error('in-process: response written to after it ended');
  }

  onAborted(cb: () => void) {
    this.abortCb = cb;
    return this;
  }

  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void) {
    this.dataCb = cb;
    return this;
  }

  onWritable() {
    return this; // every write is taken whole, so nothing ever waits to be writable
  }

  getRemoteAddressAsText() {
    return new TextEncoder().encode(this.remote).buffer as ArrayBuffer;
  }

  cork(cb: () => void) {
    cb();
    return this;
  }

  writeStatus(line: RecognizedString) {
    this.open();
    const text = bytes(line).toString('latin1');
    const sp = text.indexOf(' ');
    this.status = Number(sp < 0 ? text : text.slice(0, sp));
    this.statusText = sp < 0 ? '' : text.slice(sp + 1);
    return this;
  }

  writeHeader(key: RecognizedString, value: RecognizedString) {
    this.open();
    // headers.ts writes several headers in one call, the value carrying `\r\nname: value` lines.
    const [first, ...more] = bytes(value).toString('latin1').split('\r\n');
    this.headers.push([bytes(key).toString('latin1'), first!]);
    for (const line of more) {
      const colon = line.indexOf(':');
      this.headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
    }
    return this;
  }

  write(chunk: RecognizedString) {
    this.open();
    if (!this.chunked) this.headers.push(['Transfer-Encoding', 'chunked']); // as uWS does
    this.chunked = true;
    this.append(chunk);
    return true;
  }

  end(body?: RecognizedString, closeConnection?: boolean) {
    this.open();
    if (body !== undefined) this.append(body);
    if (!this.chunked) this.headers.push(['Content-Length', String(this.written)]);
    this.finish(closeConnection);
    return this;
  }

  endWithoutBody(reportedContentLength?: number, closeConnection?: boolean) {
    this.open();
    if (reportedContentLength !== undefined) this.headers.push(['Content-Length', String(reportedContentLength)]);
    this.finish(closeConnection);
    return this;
  }

  tryEnd(chunk: RecognizedString, totalSize: number): [boolean, boolean] {
    this.open();
    this.append(chunk);
    if (this.written < totalSize) return [true, false];
    this.headers.push(['Content-Length', String(totalSize)]);
    this.finish(false);
    return [true, true];
  }

  getWriteOffset() {
    this.live();
    return this.written;
  }

  pause() {
    this.paused = true;
  }

  resume() {
    this.paused = false;
    this.schedulePump();
  }

  /** Force-close, as a server does after a failed mid-body read: onAborted runs, the client sees an error. */
  close() {
    this.live();
    this.hangUp(new TypeError('fetch failed', { cause: new Error('the server closed the connection') }));
    return this;
  }

  /** The client (or the server, through close) ends the exchange before the response is complete. */
  hangUp(err: Error): void {
    if (this.gone || this.ended) return;
    this.gone = true;
    this.abortCb?.();
    this.settle(err);
  }

  private append(chunk: RecognizedString): void {
    const b = bytes(chunk);
    this.parts.push(b);
    this.written += b.length;
  }

  private finish(closeConnection: boolean | undefined): void {
    // uWS names the close it is about to do; the rest of the body will never be read.
    if (closeConnection) this.headers.unshift(['Connection', 'close']);
    if (closeConnection) this.bodyDone = true;
    this.ended = true;
    this.settle(null);
  }

  /**
   * Hands the request body to onData: now (uWS delivers what arrived with the head right after
   * the handler returns), then again after each resume, from the event loop as a socket would.
   * A request without a body still gets one empty last chunk, as uWS gives it.
   */
  pump(): void {
    this.pumpScheduled = false;
    const all = this.body ?? Buffer.alloc(0);
    while (this.dataCb && !this.paused && !this.gone && !this.bodyDone) {
      const n = Math.min(CHUNK, all.length - this.delivered);
      const chunk = all.buffer.slice(
        all.byteOffset + this.delivered,
        all.byteOffset + this.delivered + n,
      ) as ArrayBuffer;
      this.delivered += n;
      this.bodyDone = this.delivered >= all.length;
      this.dataCb(chunk, this.bodyDone);
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pump());
  }
}

/** Sends one request through `handle` and resolves the whole response once it has ended. */
export async function request(
  handle: UwsHandler,
  input: InProcessInput,
  options: InProcessOptions = {},
): Promise<Response> {
  const head = await headOf(input);
  const signal = options.signal ?? (input instanceof Request ? input.signal : undefined);
  signal?.throwIfAborted();
  const ureq: UwsRequestHead = {
    getMethod: () => head.method.toLowerCase(),
    getCaseSensitiveMethod: () => head.method,
    getUrl: () => head.path,
    getQuery: () => head.query,
    forEach: (cb) => head.headers.forEach(([k, v]) => cb(k, v)),
  };
  let res!: MemoryResponse;
  const settled = new Promise<void>((resolve, reject) => {
    res = new MemoryResponse(options.remoteAddress ?? '127.0.0.1', head.body, (err) => (err ? reject(err) : resolve()));
  });
  const onAbort = () => res.hangUp(signal!.reason as Error);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // The one cast: respond.ts is typed against the whole uWS HttpResponse, of which this
    // implements the part the server calls (ResponseSubset).
    handle(res as unknown as HttpResponse, ureq);
    res.pump();
    await settled;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const bodiless = head.method === 'HEAD' || NULL_BODY_STATUS.has(res.status);
  return new Response(bodiless ? null : new Uint8Array(res.bodyBytes), {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}
