import { Readable } from 'node:stream';
import type { RunningRepo } from '../../src/main.js';

// fetch-style arguments (a path and a RequestInit) for RunningRepo.request, the in-process
// entry to the server's request path, so that a test converts by renaming fetch to request.

/** A request body as bytes: the in-process request takes the whole body at once. */
async function bodyBytes(body: RequestInit['body'] | Readable): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (body instanceof Readable) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(parts);
  }
  // Response reads every other BodyInit (string, bytes, Blob, URLSearchParams, web streams).
  return Buffer.from(await new Response(body).arrayBuffer());
}

export async function requestInProcess(
  repo: Pick<RunningRepo, 'request'>,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => (headers[k] = v));
  const body = await bodyBytes(init.body);
  return repo.request({ method: init.method ?? 'GET', url: path, headers, body }, { signal: init.signal ?? undefined });
}
