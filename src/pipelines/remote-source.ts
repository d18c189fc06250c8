import type { Readable } from 'node:stream';
import { Errors, isPeerUnrecognized, remoteFetchFailure } from '../errors.js';
import type { FederationClient } from '../matrix/federation-client.js';
import type { SigningKey } from '../matrix/signing-keys.js';
import { multipartBoundary, parseMultipart } from '../matrix/multipart.js';
import type { SafeResponse } from '../net/safe-request.js';
import { filenameFromDisposition } from '../http/content-disposition.js';

// Where a remote file's bytes come from (spec v1.11, MSC3916): the signed federation endpoint
// first, its multipart answer parsed as a stream (a Location part is followed through the same
// address checks and never cached); the legacy media endpoint when the peer does not know the
// federation one, or when we have no signing key.

export interface RemoteBody {
  contentType: string | null;
  uploadName: string | null;
  /** From Content-Length where the peer sent one. */
  size: number | null;
  body: Readable;
}

export interface SourceRequest {
  origin: string;
  mediaId: string;
  ourName: string;
  key: SigningKey | null;
  timeoutMs: number;
  maxBytes: number;
}

/** An answer that means "ask the legacy endpoint instead" (spec: 404/405 M_UNRECOGNIZED, a non-JSON 404, or 400). */
async function wantsFallback(res: SafeResponse): Promise<boolean> {
  if (res.status === 400) return true;
  if (res.status !== 404 && res.status !== 405) return false;
  const text = await readSmall(res.body, 16 * 1024).catch(() => '');
  try {
    // JSON null throws here too, and counts as no JSON body.
    return isPeerUnrecognized(JSON.parse(text) as { errcode?: unknown });
  } catch {
    return res.status === 404; // not JSON: a server without the endpoint
  }
}

async function readSmall(body: Readable, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) break;
    chunks.push(c as Buffer);
  }
  body.destroy();
  return Buffer.concat(chunks).toString('utf8');
}

function sizeOf(res: SafeResponse, maxBytes: number): number | null {
  const cl = res.headers['content-length'];
  if (cl === undefined || !/^\d+$/.test(cl)) return null;
  const n = Number(cl);
  if (n > maxBytes) {
    res.body.destroy();
    throw Errors.remoteTooLarge(`Remote media is ${n} bytes; the limit is ${maxBytes} (downloads.maxBytes)`);
  }
  return n;
}

async function notFoundOrFail(res: SafeResponse, what: string): Promise<never> {
  res.body.destroy();
  if (res.status === 404) throw Errors.notFound('Remote media not found');
  throw Errors.badGateway(`${what} answered ${res.status}`);
}

function plainBody(res: SafeResponse, maxBytes: number): RemoteBody {
  const size = sizeOf(res, maxBytes);
  return {
    contentType: (res.headers['content-type'] as string | undefined) ?? null,
    uploadName: filenameFromDisposition(res.headers['content-disposition'] as string | undefined),
    size,
    body: res.body,
  };
}

async function viaFederation(fed: FederationClient, r: SourceRequest): Promise<RemoteBody | 'fallback'> {
  const uri = `/_matrix/federation/v1/media/download/${encodeURIComponent(r.mediaId)}`;
  const res = await fed.request({
    origin: r.ourName,
    destination: r.origin,
    uri,
    key: r.key,
    timeoutMs: r.timeoutMs,
    maxBytes: r.maxBytes + 64 * 1024,
  });
  if (res.status !== 200) {
    if (await wantsFallback(res)) return 'fallback';
    return notFoundOrFail(res, r.origin);
  }
  const boundary = multipartBoundary(res.headers['content-type'] as string | undefined);
  if (!boundary) {
    res.body.destroy();
    throw Errors.badGateway(`${r.origin} answered the federation download without a multipart body`);
  }
  const { part } = await parseMultipart(res.body, boundary);
  if (part.kind === 'location') {
    const hop = await fed.fetchUrl(part.location, r.timeoutMs, r.maxBytes);
    if (hop.status !== 200) return notFoundOrFail(hop, 'The redirect target');
    return plainBody(hop, r.maxBytes);
  }
  return {
    contentType: part.contentType,
    uploadName: filenameFromDisposition(part.contentDisposition),
    size: null,
    body: part.body,
  };
}

async function viaLegacy(fed: FederationClient, r: SourceRequest): Promise<RemoteBody> {
  const uri = `/_matrix/media/v3/download/${encodeURIComponent(r.origin)}/${encodeURIComponent(r.mediaId)}?allow_remote=false&allow_redirect=true`;
  const res = await fed.request({
    origin: r.ourName,
    destination: r.origin,
    uri,
    key: null,
    timeoutMs: r.timeoutMs,
    maxBytes: r.maxBytes,
    maxRedirects: 5,
  });
  if (res.status !== 200) return notFoundOrFail(res, r.origin);
  return plainBody(res, r.maxBytes);
}

/** Opens the remote file; errors are Matrix errors (404 passes through, the rest 502). */
export async function openRemoteSource(fed: FederationClient, r: SourceRequest): Promise<RemoteBody> {
  try {
    if (r.key) {
      const got = await viaFederation(fed, r);
      if (got !== 'fallback') return got;
    }
    return await viaLegacy(fed, r);
  } catch (e) {
    throw remoteFetchFailure(e, r.origin);
  }
}
