import type { HttpResponse } from 'uWebSockets.js';
import type { Readable } from 'node:stream';
import { MatrixError } from '../errors.js';
import type { Headers, HttpRequest, MediaBody, Result } from './types.js';
import {
  COMMON_HEADER_BLOCK,
  PAGE_HEADER_BLOCK,
  headerBlock,
  safeHeaderValue,
  statusLine,
  type HeaderBlock,
} from './headers.js';
import { BufferPool } from './buffer-pool.js';
import { parseRange } from './range.js';

// The one place that turns a Result into bytes on the wire: status, headers, conditional
// requests, ranges, HEAD, and streaming with tryEnd/onWritable backpressure.

export interface ResponseState {
  aborted: boolean;
  done: boolean;
  /** Close the connection after responding (the request body was not fully read). */
  closeAfter: boolean;
  /** Cleanups to run if the client goes away mid-response (open file streams). */
  onAbort: (() => void)[];
  /** The status line sent, once the head is written (metrics, access log). */
  status?: number;
}

function writeHead(
  res: HttpResponse,
  st: ResponseState,
  status: number,
  headers: Headers | undefined,
  block?: HeaderBlock,
  common: HeaderBlock = COMMON_HEADER_BLOCK,
): void {
  st.status = status;
  res.writeStatus(statusLine(status));
  res.writeHeader(common[0], common[1]);
  if (block) res.writeHeader(block[0], block[1]);
  if (headers) for (const k in headers) res.writeHeader(k, safeHeaderValue(headers[k]!));
}

/**
 * A media response's own headers (the handler's, plus ETag and Accept-Ranges) as one
 * writeHeader call, like COMMON_HEADER_BLOCK. Handlers that hand back the same frozen headers
 * object for the same media (api/media/media-headers.ts keeps one per row) get the block built and checked
 * once per ETag; any other headers object gets a block of its own, collected with it.
 */
const mediaBlocks = new WeakMap<Headers, { etag: string; block: HeaderBlock }>();
function mediaHeaderBlock(headers: Headers, etag: string): HeaderBlock {
  // The ETag is part of the block: a headers object shared by different content (thumbnail
  // headers are one object per output type) gets the block rebuilt when the ETag changes.
  const memo = mediaBlocks.get(headers);
  if (memo && memo.etag === etag) return memo.block;
  const block = headerBlock({ ...headers, ETag: etag, 'Accept-Ranges': 'bytes' });
  mediaBlocks.set(headers, { etag, block });
  return block;
}

/**
 * Ends a response that carries no body bytes: a HEAD (with the length a GET would send) or a 304.
 * uWS 20.30's endWithoutBody(n) with n > 0 leaves the connection expecting n more bytes, and
 * the next request on that keep-alive connection is dropped without an answer (nginx upstream
 * keepalive turns each HEAD-then-GET into a 502). So the length goes out as a plain header and
 * uWS is told nothing about it. A 304 names no length at all (RFC 9110 §15.4.5).
 */
function endBodiless(res: HttpResponse, st: ResponseState, length: number | undefined): void {
  // Closing anyway: the stale expectation dies with the connection. (An explicit undefined
  // length is read by the binding as 2^63, so the argument is either a number or absent.)
  if (st.closeAfter) {
    res.endWithoutBody(length ?? 0, true);
    return;
  }
  if (length !== undefined) res.writeHeader('Content-Length', String(length));
  res.endWithoutBody();
}

function endWith(
  res: HttpResponse,
  st: ResponseState,
  req: HttpRequest,
  status: number,
  headers: Headers | undefined,
  body?: Buffer | string,
  block?: HeaderBlock,
  common?: HeaderBlock,
): void {
  if (st.aborted || st.done) return;
  st.done = true;
  res.cork(() => {
    writeHead(res, st, status, headers, block, common);
    if (status === 304) endBodiless(res, st, undefined);
    else if (req.method === 'HEAD') endBodiless(res, st, body === undefined ? 0 : Buffer.byteLength(body));
    else res.end(body ?? '', st.closeAfter);
  });
}

export function sendError(res: HttpResponse, st: ResponseState, req: HttpRequest, err: MatrixError): void {
  endWith(res, st, req, err.status, { 'Content-Type': 'application/json', ...err.headers }, JSON.stringify(err.body()));
}

export async function sendResult(
  res: HttpResponse,
  st: ResponseState,
  req: HttpRequest,
  result: Result,
): Promise<void> {
  switch (result.kind) {
    case 'json':
      return endWith(
        res,
        st,
        req,
        result.status,
        { 'Content-Type': 'application/json', ...result.headers },
        JSON.stringify(result.body),
      );
    case 'bytes':
      return endWith(res, st, req, result.status, result.headers, result.body);
    case 'page':
      return endWith(res, st, req, result.status, result.headers, result.body, undefined, PAGE_HEADER_BLOCK);
    case 'empty':
      return endWith(res, st, req, result.status, result.headers);
    case 'media':
      return sendMedia(res, st, req, result.media, result.headers);
    case 'stream':
      return sendStream(res, st, req, result.status, result.headers, result.body);
  }
}

/** Chunked transfer of a stream of unknown length, waiting for onWritable when uWS buffers. */
async function sendStream(
  res: HttpResponse,
  st: ResponseState,
  req: HttpRequest,
  status: number,
  headers: Headers,
  body: Readable,
): Promise<void> {
  if (req.method === 'HEAD') {
    // The GET would be chunked, so the HEAD names no length either.
    body.destroy();
    if (st.aborted || st.done) return;
    st.done = true;
    res.cork(() => {
      writeHead(res, st, status, headers);
      endBodiless(res, st, undefined);
    });
    return;
  }
  let waitWritable: (() => void) | null = null;
  res.onWritable(() => {
    waitWritable?.();
    return true;
  });
  st.onAbort.push(() => {
    body.destroy();
    waitWritable?.();
  });
  let headWritten = false;
  const head = () => {
    if (!headWritten) writeHead(res, st, status, headers);
    headWritten = true;
  };
  try {
    for await (const chunk of body) {
      if (st.aborted || st.done) return;
      let ok = true;
      res.cork(() => {
        head();
        ok = res.write(chunk as Buffer);
      });
      if (!ok) {
        await new Promise<void>((r) => (waitWritable = r));
        waitWritable = null;
      }
    }
  } catch (e) {
    // Nothing sent yet: the caller's error becomes a normal error response.
    if (!headWritten) throw e;
    return failMidBody(res, st);
  } finally {
    body.destroy();
  }
  if (st.aborted || st.done) return;
  st.done = true;
  res.cork(() => {
    head();
    res.end(undefined, st.closeAfter);
  });
}

async function sendMedia(
  res: HttpResponse,
  st: ResponseState,
  req: HttpRequest,
  media: MediaBody,
  headers: Headers,
): Promise<void> {
  const etag = `"${media.etag}"`;
  const block = mediaHeaderBlock(headers, etag);
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*')) {
    return endWith(res, st, req, 304, undefined, undefined, block);
  }
  const range = parseRange(req.headers['range'], media.size);
  if (range.kind === 'unsatisfiable') {
    return endWith(res, st, req, 416, { 'Content-Range': `bytes */${media.size}` }, undefined, block);
  }
  const start = range.kind === 'range' ? range.start : 0;
  const end = range.kind === 'range' ? range.end : media.size - 1;
  const status = range.kind === 'range' ? 206 : 200;
  const extra = range.kind === 'range' ? { 'Content-Range': `bytes ${start}-${end}/${media.size}` } : undefined;
  const length = media.size === 0 ? 0 : end - start + 1;

  if (req.method === 'HEAD') {
    if (st.aborted || st.done) return;
    st.done = true;
    res.cork(() => {
      writeHead(res, st, status, extra, block);
      endBodiless(res, st, length);
    });
    return;
  }
  if (media.readAll) {
    const all = await media.readAll();
    return endWith(res, st, req, status, extra, status === 206 ? all.subarray(start, end + 1) : all, block);
  }
  if (length === 0) return endWith(res, st, req, status, extra, '', block);
  if (media.readAt) return sendByReads(res, st, status, extra, block, media.readAt, start, length);
  return streamBody(res, st, status, extra, block, media.openStream(start, end), length);
}

const READ_CHUNK = 1024 * 1024;
/** Read buffers are reused: tryEnd copies what the socket takes, so a buffer is free again once
 * its chunk is fully written. Bounded: at most 64 idle buffers (64 MiB) are kept. */
const readBuffers = new BufferPool(READ_CHUNK, 64);

/**
 * Random-access sending: read a chunk, tryEnd it, wait for onWritable when the socket is
 * full, repeat. One chunk in memory per response, and no stream objects on the hot path.
 */
async function sendByReads(
  res: HttpResponse,
  st: ResponseState,
  status: number,
  headers: Headers | undefined,
  block: HeaderBlock,
  readAt: (pos: number, len: number, into: Buffer) => Promise<Buffer>,
  start: number,
  total: number,
): Promise<void> {
  const buf = readBuffers.take();
  try {
    await sendChunks(res, st, status, headers, block, readAt, start, total, buf);
  } finally {
    readBuffers.give(buf);
  }
}

/**
 * Writes a body chunk by chunk with uWS backpressure: tryEnd each chunk; when the socket is
 * full, wait for onWritable to take the rest. Resolves true once the response is complete.
 */
function chunkWriter(
  res: HttpResponse,
  st: ResponseState,
  status: number,
  headers: Headers | undefined,
  block: HeaderBlock,
  total: number,
) {
  let headWritten = false;
  let waitWritable: (() => void) | null = null;
  let pending: Buffer | null = null;
  let pendingOffset = 0;
  res.onWritable((offset) => {
    if (!pending) return true;
    const [ok, done] = res.tryEnd(pending.subarray(offset - pendingOffset), total);
    if (ok || done) {
      pending = null;
      if (done) st.done = true;
      waitWritable?.();
    }
    return ok;
  });
  st.onAbort.push(() => waitWritable?.());
  return async (chunk: Buffer): Promise<boolean> => {
    let ok = false;
    let done = false;
    res.cork(() => {
      if (!headWritten) {
        writeHead(res, st, status, headers, block);
        headWritten = true;
      }
      pendingOffset = res.getWriteOffset();
      [ok, done] = res.tryEnd(chunk, total);
    });
    if (done) st.done = true;
    else if (!ok) {
      pending = chunk;
      await new Promise<void>((r) => (waitWritable = r));
      waitWritable = null;
    }
    return st.done;
  };
}

/** Headers may already be out when a read fails: closing the connection is the only honest signal left. */
function failMidBody(res: HttpResponse, st: ResponseState): void {
  if (!st.aborted && !st.done) res.close();
  st.done = true;
}

async function sendChunks(
  res: HttpResponse,
  st: ResponseState,
  status: number,
  headers: Headers | undefined,
  block: HeaderBlock,
  readAt: (pos: number, len: number, into: Buffer) => Promise<Buffer>,
  start: number,
  total: number,
  buf: Buffer,
): Promise<void> {
  const write = chunkWriter(res, st, status, headers, block, total);
  let sent = 0;
  while (sent < total && !st.aborted && !st.done) {
    let chunk: Buffer;
    try {
      chunk = await readAt(start + sent, Math.min(READ_CHUNK, total - sent), buf);
    } catch {
      return failMidBody(res, st);
    }
    if (st.aborted) return;
    sent += chunk.length;
    await write(chunk);
  }
}

/** Streams (stores without random access) through the same writer, pausing the stream between chunks. */
async function streamBody(
  res: HttpResponse,
  st: ResponseState,
  status: number,
  headers: Headers | undefined,
  block: HeaderBlock,
  stream: Readable,
  total: number,
): Promise<void> {
  const write = chunkWriter(res, st, status, headers, block, total);
  st.onAbort.push(() => stream.destroy());
  let sent = 0;
  try {
    for await (const chunk of stream) {
      if (st.aborted || st.done) break;
      sent += (chunk as Buffer).length;
      if (await write(chunk as Buffer)) break;
    }
  } catch {
    return failMidBody(res, st);
  } finally {
    stream.destroy();
  }
  // The blob was shorter than its row says: never pretend the response is complete.
  if (!st.done && !st.aborted && sent < total) failMidBody(res, st);
}
