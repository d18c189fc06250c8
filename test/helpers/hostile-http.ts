import { connect, type Socket } from 'node:net';

// A raw HTTP/1.1 client over node:net for the requests fetch() refuses to send: lying
// Content-Lengths, hand-made chunked bodies, backslashes and %00 in paths, arbitrary Host
// headers, and connections torn down mid-body. Responses are parsed as they arrive, so a
// test can see an early answer (413, 405) while it is still sending.

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers keep every value. */
  headers: Record<string, string[]>;
  head: string;
  body: Buffer;
}

export function header(r: RawResponse, name: string): string | undefined {
  return r.headers[name.toLowerCase()]?.join(', ');
}

export function errcode(r: RawResponse): string | undefined {
  try {
    return (JSON.parse(r.body.toString('utf8')) as { errcode?: string }).errcode;
  } catch {
    return undefined;
  }
}

/** A request head as bytes, the path sent exactly as given (no normalising, no escaping). */
export function rawHead(method: string, path: string, headers: Record<string, string | number>): Buffer {
  let s = `${method} ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

export class RawConn {
  readonly responses: RawResponse[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  /** Methods of the requests sent through head(), in order: a HEAD's answer has no body. */
  private readonly methods: string[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    const gone = () => {
      if (this.closed) return;
      this.closed = true;
      this.parse(true);
      this.wake();
    };
    sock.on('close', gone);
    sock.on('error', gone);
  }

  static open(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  /** Writes and waits until the bytes are handed to the OS; false once the peer has closed. */
  write(data: Buffer | string): Promise<boolean> {
    if (this.closed || this.sock.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const fin = (v: boolean) => {
        this.sock.off('close', onClose);
        resolve(v);
      };
      const onClose = () => fin(false);
      this.sock.once('close', onClose);
      this.sock.write(data, (err) => fin(!err));
    });
  }

  /** Sends a request head; the body (if any) is the caller's business. */
  head(method: string, path: string, headers: Record<string, string | number>): Promise<boolean> {
    this.methods.push(method);
    return this.write(rawHead(method, path, headers));
  }

  /** Several bodiless requests in one write, as a pipelining client sends them. */
  pipeline(requests: { method: string; path: string; headers: Record<string, string | number> }[]): Promise<boolean> {
    for (const q of requests) this.methods.push(q.method);
    return this.write(Buffer.concat(requests.map((q) => rawHead(q.method, q.path, q.headers))));
  }

  /** Resolves with response number `n` (0-based), or null if the socket closed first. */
  async response(n = 0, timeoutMs = 10_000): Promise<RawResponse | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.responses.length <= n && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    return this.responses[n] ?? null;
  }

  /** Resolves once the server has closed the connection (or after timeoutMs: false). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  destroy(): void {
    this.sock.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private parse(eof = false): void {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string[]> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i < 0) continue;
        const k = l.slice(0, i).trim().toLowerCase();
        (headers[k] ??= []).push(l.slice(i + 1).trim());
      }
      const cl = headers['content-length']?.[0];
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
      const bodyless =
        status === 304 ||
        status === 204 ||
        (status >= 100 && status < 200) ||
        this.methods[this.responses.length] === 'HEAD';
      if (!bodyless && /chunked/i.test(headers['transfer-encoding']?.join(',') ?? '')) {
        const body = dechunk(this.buf.subarray(end + 4));
        if (!body) return; // the last chunk has not arrived yet
        this.responses.push({ status, headers, head, body: body.body });
        this.buf = this.buf.subarray(end + 4 + body.consumed);
        this.wake();
        continue;
      }
      let len: number;
      if (bodyless) len = 0;
      else if (cl !== undefined) len = Number(cl);
      else if (eof) len = this.buf.length - end - 4;
      else return; // read until close
      if (this.buf.length < end + 4 + len) {
        if (!eof) return;
        len = this.buf.length - end - 4;
      }
      this.responses.push({ status, headers, head, body: Buffer.from(this.buf.subarray(end + 4, end + 4 + len)) });
      this.buf = this.buf.subarray(end + 4 + len);
      this.wake();
    }
  }
}

/** A whole chunked body decoded, with the bytes it took; null while it is incomplete. */
function dechunk(buf: Buffer): { body: Buffer; consumed: number } | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) throw new Error('bad chunk size line');
    if (size === 0) {
      const trailerEnd = buf.indexOf('\r\n', eol + 2);
      if (trailerEnd < 0) return null;
      return { body: Buffer.concat(parts), consumed: trailerEnd + 2 };
    }
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** One request on a fresh connection: head, optional body, first response, close. */
export async function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string | number>,
  body?: Buffer | string,
): Promise<RawResponse> {
  const c = await RawConn.open(port);
  try {
    await c.head(method, path, headers);
    if (body !== undefined && body.length) await c.write(body);
    const r = await c.response();
    if (!r) throw new Error(`connection closed without a response to ${method} ${path}`);
    return r;
  } finally {
    c.destroy();
  }
}

/** A chunked-encoding frame for `data` (a zero-length buffer gives the last chunk). */
export function chunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
}

/**
 * The filename a Content-Disposition value names: RFC 5987 `filename*=utf-8''…` first,
 * else `filename=` as a token or quoted string; null when it names none.
 */
export function dispositionFilename(v: string): string | null {
  const ext = /;\s*filename\*\s*=\s*utf-8''([^;\s]*)/i.exec(v);
  if (ext) return decodeURIComponent(ext[1]!);
  const quoted = /;\s*filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(v);
  if (quoted) return quoted[1]!.replace(/\\(.)/g, '$1');
  const token = /;\s*filename\s*=\s*([^;\s"]+)/i.exec(v);
  return token ? token[1]! : null;
}
