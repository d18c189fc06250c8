import type { Readable } from 'node:stream';

// The plain request and result types handlers see. Nothing here knows about uWS.

export interface BodySource {
  /** Declared Content-Length, or null for chunked bodies. */
  readonly contentLength: number | null;
  /**
   * Starts delivery. A chunk is only valid during its onChunk call (it may be a view of the
   * socket's receive buffer): a consumer that keeps bytes copies them.
   */
  start(h: { onChunk(chunk: Buffer): void; onEnd(): void; onError(err: Error): void }): void;
  pause(): void;
  resume(): void;
  /** True once the whole body has been delivered. */
  readonly complete: boolean;
}

export interface HttpRequest {
  method: string;
  path: string;
  rawQuery: string;
  query: URLSearchParams;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  remoteAddress: string;
  body: BodySource | null;
  /** Set once the client has gone away. */
  aborted: () => boolean;
  onAbort(cb: () => void): void;
  /** Set by the dispatcher once the route and Host are known: the metric labels. */
  labels?: { action: string; host: string };
  /** Set by the dispatcher: the ID on every log line of this request. */
  requestId?: string;
}

export type Headers = Record<string, string>;

export interface MediaBody {
  size: number;
  etag: string;
  /** Whole content for small blobs; the responder slices it for ranges. */
  readAll?: () => Promise<Buffer>;
  /** Streams a byte range (inclusive end) of the content. */
  openStream: (start: number, end: number) => Readable;
  /** Random access (files): preferred over openStream, no stream machinery per chunk. */
  readAt?: (position: number, length: number, into: Buffer) => Promise<Buffer>;
}

export type Result =
  | { kind: 'json'; status: number; body: unknown; headers?: Headers }
  | { kind: 'bytes'; status: number; body: Buffer; headers?: Headers }
  /** An HTML page of ours: sent like bytes, under PAGE_HEADER_BLOCK instead of the common block. */
  | { kind: 'page'; status: number; body: Buffer; headers?: Headers }
  | { kind: 'media'; status: 200; media: MediaBody; headers: Headers }
  | { kind: 'empty'; status: number; headers?: Headers }
  /** A body of unknown length (federation multipart, remote media streamed through): sent
   * chunked with backpressure; an error mid-body closes the connection. */
  | { kind: 'stream'; status: number; headers: Headers; body: Readable };

export const json = (body: unknown, status = 200, headers?: Headers): Result => ({
  kind: 'json',
  status,
  body,
  headers,
});
