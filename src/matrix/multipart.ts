// multipart/mixed for federation media (MSC3916, spec v1.11): a JSON part, then either the file
// bytes or a part with a `Location` header. Writer for serving, streaming parser for fetching.
//
// Line endings: CRLF only, everywhere. RFC 2046 requires it, the reference's wire example uses it,
// and Synapse's parser (python-multipart) is strict too: it raises on a missing LF after a boundary
// or a header line. Only the preamble is lenient (anything, incl. bare CR/LF, before the first
// `--boundary`), as there. Tolerating bare LF would also make `\n--boundary` inside binary data
// ambiguous, so a bare-LF message fails with MultipartError instead of being half-understood.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { MediaRepoError } from '../errors.js';

export class MultipartError extends MediaRepoError<'MR_ERR_MULTIPART'> {
  constructor(message: string) {
    super('MR_ERR_MULTIPART', message);
    this.name = 'MultipartError';
  }
}

/** 40 hex chars (160 random bits, like Synapse's uuid4().hex but longer): cannot collide with data. */
export function newBoundary(): string {
  return randomBytes(20).toString('hex');
}

const CRLF = '\r\n';
const SAFE_HEADER = /^[^\r\n\0]*$/; // header values end up on the wire: no response splitting

/** JSON part, then the file bytes piped from `file.body` (backpressure preserved), or a Location part. */
export function multipartResponse(opts: {
  boundary: string;
  json: unknown;
  file: { contentType: string; contentDisposition?: string; body: Readable } | { location: string };
}): Readable {
  const { boundary, file } = opts;
  if (!validBoundary(boundary)) throw new TypeError('invalid multipart boundary');
  const jsonText = JSON.stringify(opts.json);
  if (jsonText === undefined) throw new TypeError('json part is not JSON-serialisable');
  // A caller-chosen boundary could occur in the JSON and end the part early on the peer's side.
  if (jsonText.includes(boundary)) throw new TypeError('boundary occurs in the JSON part');
  const headers: string[] = [];
  if ('location' in file) headers.push(`Location: ${file.location}`);
  else {
    headers.push(`Content-Type: ${file.contentType}`);
    if (file.contentDisposition !== undefined) headers.push(`Content-Disposition: ${file.contentDisposition}`);
  }
  if (!headers.every((h) => SAFE_HEADER.test(h))) throw new TypeError('CR, LF or NUL in a part header');
  const head = Buffer.from(
    `--${boundary}${CRLF}Content-Type: application/json${CRLF}${CRLF}${jsonText}${CRLF}` +
      `--${boundary}${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}`,
  );
  const tail = Buffer.from(`${CRLF}--${boundary}--${CRLF}`);
  const body = 'location' in file ? null : file.body;
  // Hand-rolled rather than Readable.from(async generator): a generator parked in `await` on an
  // idle file stream can't be returned, so a client disconnect would leak the file stream.
  let started = false;
  return new Readable({
    read() {
      if (started) return void body?.resume(); // consumer drained: release backpressure
      started = true;
      this.push(head);
      if (!body) {
        this.push(tail);
        this.push(null);
        return;
      }
      if (body.destroyed && !body.readableEnded) return void this.destroy(new Error('file stream already destroyed'));
      body.on('data', (c: Buffer | string) => {
        if (!this.push(Buffer.isBuffer(c) ? c : Buffer.from(c))) body.pause();
      });
      body.once('end', () => {
        this.push(tail);
        this.push(null);
      });
      body.once('error', (err) => this.destroy(err));
      // Closed without 'end' (destroyed elsewhere): never finish the message as if complete.
      body.once('close', () => {
        if (!body.readableEnded) this.destroy(new Error('file stream closed early'));
      });
    },
    destroy(err, cb) {
      body?.destroy();
      cb(err);
    },
  });
}

// RFC 2046 bchars; at most 70 and not ending in a space.
function validBoundary(b: string): boolean {
  return /^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$/.test(b) && !b.endsWith(' ');
}

export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType) return null;
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type !== 'multipart/mixed' || semi === -1) return null;
  const param = /;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (let m; (m = param.exec(contentType));) {
    if (m[1].toLowerCase() !== 'boundary') continue;
    const raw = m[2].trim();
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    return validBoundary(value) ? value : null;
  }
  return null;
}

/** `headers` have lower-case names; `body` streams the part's bytes and errors if the message is cut. */
export interface ParsedFilePart {
  kind: 'file';
  headers: Record<string, string>;
  contentType: string | null;
  contentDisposition: string | null;
  body: Readable;
}
/** Only reported once the closing delimiter arrived (the part has no body to signal truncation). */
export interface ParsedLocationPart {
  kind: 'location';
  location: string;
  headers: Record<string, string>;
}

const enum S {
  Preamble,
  Headers1,
  Json,
  Headers2,
  LocationBody,
  File,
  Done,
}

/**
 * Resolves once the JSON part and the second part's headers are read; the file body then streams
 * (with backpressure on `source`). Rejects, or errors the body, with MultipartError on malformed
 * or truncated input and on limit violations; errors from `source` pass through unchanged. On any
 * failure `source` is destroyed. A third part is an error; the epilogue is ignored.
 */
export function parseMultipart(
  source: Readable,
  boundary: string,
  limits: { maxJsonBytes?: number; maxHeaderBytes?: number } = {},
): Promise<{ json: unknown; part: ParsedFilePart | ParsedLocationPart }> {
  if (!validBoundary(boundary)) return Promise.reject(new MultipartError('invalid boundary'));
  const maxJson = limits.maxJsonBytes ?? 64 * 1024;
  const maxHeader = limits.maxHeaderBytes ?? 8 * 1024;
  const maxPreamble = 8 * 1024;
  const delim = Buffer.from(`\r\n--${boundary}`);
  const L = delim.length;

  return new Promise((resolve, reject) => {
    let state = S.Preamble;
    // Non-file states accumulate here (bounded by the limits). The preamble starts with a virtual
    // CRLF so that a body opening with `--boundary` matches the same `\r\n--boundary` pattern.
    let acc: Buffer = Buffer.from(CRLF);
    let scanFrom = 0; // where the next search in `acc` may start, so bytes are not rescanned
    let json: unknown;
    let out: Readable | null = null; // the file part's body, once resolved
    let locHeaders: Record<string, string> = {};

    const fail = (err: Error): void => {
      if (state === S.Done) return;
      state = S.Done;
      source.off('data', onData);
      if (out) out.destroy(err);
      else reject(err);
      source.destroy(); // nothing more can be used; don't keep reading a broken/hostile response
    };

    // Finds the next real delimiter at or after `from`: `\r\n--B` followed by `\r\n` (another part)
    // or `--` (the close). Any other follower means the bytes were data. 'more' = undecidable yet.
    const findDelim = (buf: Buffer, from: number): { at: number; close: boolean } | 'more' | null => {
      for (let i = buf.indexOf(delim, from); i !== -1; i = buf.indexOf(delim, i + 1)) {
        if (i + L + 2 > buf.length) return 'more';
        const a = buf[i + L],
          b = buf[i + L + 1];
        if (a === 0x2d && b === 0x2d) return { at: i, close: true };
        if (a === 0x0d && b === 0x0a) return { at: i, close: false };
      }
      return null;
    };

    // Reads one header block at the start of `acc`; returns the headers or 'more'.
    const readHeaders = (): Record<string, string> | 'more' => {
      const end = acc.subarray(0, 2).toString('latin1') === CRLF ? 0 : acc.indexOf('\r\n\r\n', scanFrom);
      if (end === -1) {
        if (acc.indexOf('\n\n') !== -1) throw new MultipartError('bare LF line endings in part headers');
        if (acc.length > maxHeader + 3) throw new MultipartError('part header block too large');
        scanFrom = Math.max(0, acc.length - 3);
        return 'more';
      }
      if (end > maxHeader) throw new MultipartError('part header block too large');
      const headers: Record<string, string> = {};
      // latin1 keeps each byte as one char, as node:http does for response headers.
      for (const line of end === 0 ? [] : acc.subarray(0, end).toString('latin1').split(CRLF)) {
        const colon = line.indexOf(':');
        if (colon <= 0 || /\s/.test(line.slice(0, colon)) || /[\r\n]/.test(line))
          throw new MultipartError('malformed part header line');
        const name = line.slice(0, colon).toLowerCase();
        if (name in headers) throw new MultipartError(`duplicate part header ${name}`); // ambiguous: refuse
        headers[name] = line.slice(colon + 1).trim();
      }
      consume(end === 0 ? 2 : end + 4); // the block, its last CRLF and the blank line
      return headers;
    };
    const consume = (n: number): void => {
      acc = acc.subarray(n);
      scanFrom = 0;
    };

    // Drives the bounded states over `acc` until it needs more input or reaches the file body.
    const step = (): void => {
      for (;;) {
        if (state === S.Preamble || state === S.Json || state === S.LocationBody) {
          const limit = state === S.Json ? maxJson : state === S.Preamble ? maxPreamble + 2 : maxHeader;
          const what = state === S.Json ? 'JSON part' : state === S.Preamble ? 'preamble' : 'Location part body';
          const found = findDelim(acc, scanFrom);
          if (found === null || found === 'more') {
            if (acc.length - (L + 1) > limit) throw new MultipartError(`${what} too large`);
            if (found === null) scanFrom = Math.max(0, acc.length - (L + 1));
            return;
          }
          if (found.at > limit) throw new MultipartError(`${what} too large`);
          if (state === S.Preamble) {
            if (found.close) throw new MultipartError('multipart body has no parts');
            state = S.Headers1;
          } else if (state === S.Json) {
            if (found.close) throw new MultipartError('multipart body has only one part');
            try {
              json = JSON.parse(acc.subarray(0, found.at).toString('utf8'));
            } catch {
              throw new MultipartError('first part is not valid JSON');
            }
            state = S.Headers2;
          } else {
            // The Location part is only reported once the close arrived, so truncation is caught.
            if (!found.close) throw new MultipartError('more than two parts');
            state = S.Done;
            resolve({ json, part: { kind: 'location', location: locHeaders.location, headers: locHeaders } });
            return;
          }
          consume(found.at + L + 2);
        } else if (state === S.Headers1 || state === S.Headers2) {
          const headers = readHeaders();
          if (headers === 'more') return;
          // MMR accepts a JSON part without (or with another) Content-Type; so do we: parse decides.
          if (state === S.Headers1) state = S.Json;
          else if ('location' in headers) {
            if (!headers.location) throw new MultipartError('empty Location header');
            locHeaders = headers;
            state = S.LocationBody;
          } else {
            state = S.File;
            out = new Readable({
              read: () => source.resume(), // consumer wants more: release the backpressure
              destroy: (err, cb) => {
                if (state !== S.Done) fail(err ?? new MultipartError('body stream destroyed'));
                cb(err);
              },
            });
            // The peer may truncate before the caller attaches listeners (e.g. while it awaits a DB
            // write); without a listener that 'error' would crash the process. The error stays
            // stored on the stream, so pipeline() and for-await still reject with it.
            out.on('error', () => {});
            const rest = acc;
            acc = Buffer.alloc(0);
            resolve({
              json,
              part: {
                kind: 'file',
                headers,
                contentType: headers['content-type'] ?? null,
                contentDisposition: headers['content-disposition'] ?? null,
                body: out,
              },
            });
            if (rest.length) fileData(rest);
            return;
          }
        } else return;
      }
    };

    // Streaming search: only a tail that could still begin a delimiter is carried over (at most
    // L+1 bytes); everything before it is pushed straight through, so memory is O(chunk + L).
    let carry: Buffer = Buffer.alloc(0);
    const fileData = (chunk: Buffer): void => {
      const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      const found = findDelim(buf, 0);
      if (found !== null && found !== 'more') {
        if (found.at > 0) out!.push(buf.subarray(0, found.at));
        if (!found.close) return fail(new MultipartError('more than two parts'));
        state = S.Done; // epilogue and anything after it is ignored; the source drains
        carry = Buffer.alloc(0);
        out!.push(null);
        return;
      }
      let keep = buf.length;
      for (let p = Math.max(0, buf.length - (L + 1)); p < buf.length; p++) {
        const n = Math.min(buf.length - p, L);
        if (buf[p] === 0x0d && buf.compare(delim, 0, n, p, p + n) === 0) {
          keep = p;
          break;
        }
      }
      carry = buf.subarray(keep);
      if (keep > 0 && !out!.push(buf.subarray(0, keep))) source.pause();
    };

    const onData = (chunk: Buffer | string): void => {
      const c = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      try {
        if (state === S.File) fileData(c);
        else if (state !== S.Done) {
          acc = acc.length ? Buffer.concat([acc, c]) : c;
          step();
        }
      } catch (err) {
        fail(err instanceof MultipartError ? err : new MultipartError(String(err)));
      }
    };
    source.on('data', onData);
    source.once('end', () =>
      fail(new MultipartError('multipart body ended before its closing delimiter (truncated, or not CRLF)')),
    );
    source.once('error', (err) => fail(err));
    source.once('close', () => fail(new MultipartError('multipart body closed before its end')));
  });
}
