import { sign } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { encodeUnpaddedBase64 } from './base64.js';
import { verifyJsonSignature, type SigningKey } from './signing-keys.js';

// Federation request authentication (spec: server-server API, "Request Authentication").
// The sender signs {method, uri, origin, destination, content?} as Signing JSON and sends
// `Authorization: X-Matrix origin=..,destination=..,key=..,sig=..`. The header follows
// RFC 7235 auth-params: names case-insensitive, any order, values quoted (with backslash
// escapes) or bare tokens; bare values may contain colons for older servers.

export interface XMatrixAuth {
  origin: string;
  destination: string | null;
  key: string;
  sig: string;
}

const TOKEN = /[A-Za-z0-9!#$%&'*+.^_`|~-]/;
const MAX_HEADER = 16 * 1024; // far above any real header; keeps garbage parsing cheap

export function parseXMatrix(header: string): XMatrixAuth {
  const scheme = /^\s*x-matrix(?:\s+|$)/i.exec(header);
  if (!scheme) throw new Error('X-Matrix: not an X-Matrix authorization');
  if (header.length > MAX_HEADER) throw new Error('X-Matrix: header too long');
  const params = new Map<string, string>();
  let i = scheme[0].length;
  const skipSpace = () => {
    while (i < header.length && /\s/.test(header[i]!)) i++;
  };
  while (i < header.length) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    } // RFC 7230 lists allow empty elements
    if (i >= header.length) break;
    const start = i;
    while (i < header.length && TOKEN.test(header[i]!)) i++;
    if (i === start)
      throw new Error(`X-Matrix: unexpected ${JSON.stringify(header[i])} where a parameter name belongs`);
    const name = header.slice(start, i).toLowerCase();
    skipSpace();
    if (header[i] !== '=') throw new Error(`X-Matrix: parameter ${name} has no value`);
    i++;
    skipSpace();
    let value = '';
    if (header[i] === '"') {
      i++;
      for (;;) {
        if (i >= header.length) throw new Error(`X-Matrix: unterminated quoted value for ${name}`);
        const c = header[i++]!;
        if (c === '"') break;
        if (c === '\\') {
          if (i >= header.length) throw new Error(`X-Matrix: unterminated quoted value for ${name}`);
          value += header[i++]!;
        } else value += c;
      }
    } else {
      const vs = i;
      while (i < header.length && !/[\s,"\\]/.test(header[i]!)) i++;
      value = header.slice(vs, i);
      if (value === '') throw new Error(`X-Matrix: parameter ${name} has an empty value`);
    }
    // A repeated parameter is ambiguous (which one was signed?): refuse it.
    if (params.has(name)) throw new Error(`X-Matrix: parameter ${name} given twice`);
    params.set(name, value);
    skipSpace();
    if (i < header.length && header[i] !== ',') throw new Error(`X-Matrix: expected "," after ${name}`);
  }
  const need = (n: string): string => {
    const v = params.get(n);
    if (!v) throw new Error(`X-Matrix: missing ${n}`);
    return v;
  };
  return { origin: need('origin'), destination: params.get('destination') || null, key: need('key'), sig: need('sig') };
}

const quote = (v: string): string => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** The header value; lower-case names, one space after the scheme, as the spec asks senders. */
export function formatXMatrix(a: XMatrixAuth): string {
  const parts = [`origin=${quote(a.origin)}`];
  if (a.destination !== null) parts.push(`destination=${quote(a.destination)}`);
  parts.push(`key=${quote(a.key)}`, `sig=${quote(a.sig)}`);
  return `X-Matrix ${parts.join(',')}`;
}

interface RequestToSign {
  method: string;
  uri: string;
  destination: string;
  content?: unknown;
}

function requestJson(req: RequestToSign, origin: string): Record<string, unknown> {
  const json: Record<string, unknown> = { method: req.method, uri: req.uri, origin, destination: req.destination };
  if (req.content !== undefined) json.content = req.content;
  return json;
}

export function signRequest(req: RequestToSign & { origin: string }, key: SigningKey): string {
  const bytes = Buffer.from(canonicalJson(requestJson(req, req.origin)), 'utf8');
  const sig = encodeUnpaddedBase64(sign(null, bytes, key.privateKey));
  return formatXMatrix({ origin: req.origin, destination: req.destination, key: key.keyId, sig });
}

/**
 * True when auth.sig signs this request for req.destination (our own server name). A header
 * naming another destination fails outright; one without destination (pre-v1.3 senders) is
 * still checked against our name, which those senders also signed.
 */
export function verifyRequestSignature(req: RequestToSign, auth: XMatrixAuth, publicKeyBase64: string): boolean {
  if (auth.destination !== null && auth.destination !== req.destination) return false;
  const json = { ...requestJson(req, auth.origin), signatures: { [auth.origin]: { [auth.key]: auth.sig } } };
  return verifyJsonSignature(json, auth.origin, auth.key, publicKeyBase64);
}
