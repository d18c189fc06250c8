// A real S3 API server (s3rver) on a loopback port, for datastore tests. s3rver stores objects
// on disk under a temp directory and speaks the S3 REST API with path-style addressing.
//
// s3rver 3.7 lacks three operations our datastore uses, so this helper answers them itself,
// in front of s3rver's router and on s3rver's own storage: AbortMultipartUpload (DELETE
// ?uploadId; s3rver answers 405), ListMultipartUploads (GET ?uploads; NotImplemented) and
// UploadPartCopy (PUT ?uploadId with x-amz-copy-source; NotImplemented).
//
// It can also misbehave on purpose: `fault` makes it drop connections (down) or answer late.
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import S3rver from 's3rver';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { defaultS3Opts } from '../../src/config/defaults.js';
import type { S3DatastoreOpts } from '../../src/config/schema.js';
import { freePort } from './repo.js';

// The SDK warns once per process that Node 20 support ends in 2027; tests need not hear it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const S3_BUCKET = 'media-test';
const UPLOADS_DIR = '._S3rver_uploads';

export type S3Fault =
  | null
  /** Every request's connection is dropped before an answer. */
  | { kind: 'down' }
  /** Every request is answered after `ms`. */
  | { kind: 'slow'; ms: number }
  /** Requests `when` picks get their connection dropped. */
  | { kind: 'drop'; when: (method: string, url: string) => boolean };

export interface TestS3 {
  endpoint: string;
  port: number;
  dir: string;
  fault: S3Fault;
  /** Sees every request's method, URL and headers before anything else does. */
  onRequest: ((method: string, url: string, headers: Record<string, string | undefined>) => void) | null;
  /** Datastore opts pointing at this server, over the given overrides. */
  opts(over?: Partial<S3DatastoreOpts>): S3DatastoreOpts;
  /** Every object key in the bucket (under `prefix`). */
  keys(prefix?: string): Promise<string[]>;
  /** Upload IDs of multipart uploads not completed or aborted. */
  openUploads(): Promise<string[]>;
  /** Stops the server (connections refused) and keeps its data for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  url: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  req: IncomingMessage;
  status: number;
  body: unknown;
  type: string;
  respond: boolean;
  set(name: string, value: string): void;
}
type Next = () => Promise<void>;
interface S3rverInstance {
  middleware: ((ctx: KoaContext, next: Next) => Promise<void>)[];
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
  store: {
    getObject(
      bucket: string,
      key: string,
      range?: { start: number; end: number },
    ): Promise<{ content: NodeJS.ReadableStream } | null>;
    putPart(
      bucket: string,
      uploadId: string,
      partNumber: number,
      content: NodeJS.ReadableStream,
    ): Promise<{ md5: string }>;
  };
}

/** Polls `check` until it holds; throws after `ms` (background cleanups take a few retries). */
export async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startTestS3(): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-s3-'));
  const port = await freePort();
  const uploadsDir = join(dir, S3_BUCKET, UPLOADS_DIR);
  let server: S3rverInstance | null = null;

  const s3: TestS3 = {
    endpoint: `127.0.0.1:${port}`,
    port,
    dir,
    fault: null,
    onRequest: null,
    opts: (over = {}) => ({
      ...defaultS3Opts(),
      endpoint: `127.0.0.1:${port}`,
      bucketName: S3_BUCKET,
      ssl: false,
      accessKeyId: 'S3RVER',
      accessSecret: 'S3RVER',
      ...over,
    }),
    async keys(prefix = '') {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: S3_BUCKET, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) out.push(o.Key!);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async openUploads() {
      return (await readdir(uploadsDir).catch(() => [] as string[])).sort();
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = null;
      s.httpServer?.closeAllConnections();
      await s.close();
    },
    async start() {
      if (server) return;
      const s = new S3rver({
        address: '127.0.0.1',
        port,
        silent: true,
        directory: dir,
        configureBuckets: [{ name: S3_BUCKET }],
      }) as unknown as S3rverInstance;
      s.middleware.unshift(faults(s3), fillIns(s, uploadsDir));
      await s.run();
      server = s;
    },
    async close() {
      client.destroy();
      await s3.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await s3.start();
  return s3;
}

function faults(s3: TestS3) {
  return async (ctx: KoaContext, next: Next): Promise<void> => {
    s3.onRequest?.(ctx.method, ctx.url, ctx.headers);
    const f = s3.fault;
    if (f?.kind === 'slow') await new Promise((r) => setTimeout(r, f.ms));
    if (f?.kind === 'down' || (f?.kind === 'drop' && f.when(ctx.method, ctx.url))) {
      ctx.respond = false;
      ctx.req.socket.destroy();
      return;
    }
    await next();
  };
}

function xml(ctx: KoaContext, status: number, body: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The operations s3rver 3.7 lacks, on its own storage layout (see the top of the file). */
function fillIns(server: S3rverInstance, uploadsDir: string) {
  return async (ctx: KoaContext, next: Next): Promise<void> => {
    const [, bucket, ...keyParts] = ctx.path.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    const uploadId = ctx.query.uploadId;
    if (ctx.method === 'DELETE' && uploadId && key) {
      const upDir = join(uploadsDir, uploadId);
      if (!(await stat(upDir).catch(() => null)))
        return xml(ctx, 404, `<Error><Code>NoSuchUpload</Code><Message>No such upload</Message></Error>`);
      await rm(upDir, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (ctx.method === 'GET' && 'uploads' in ctx.query && !key) {
      const prefix = ctx.query.prefix ?? '';
      const entries: string[] = [];
      for (const id of (await readdir(uploadsDir).catch(() => [] as string[])).sort()) {
        const upKey = await readFile(join(uploadsDir, id, 'key'), 'utf8').catch(() => null);
        if (upKey === null || !upKey.startsWith(prefix)) continue;
        const initiated = (await stat(join(uploadsDir, id))).mtime.toISOString();
        entries.push(
          `<Upload><Key>${esc(upKey)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`,
        );
      }
      return xml(
        ctx,
        200,
        `<ListMultipartUploadsResult><Bucket>${bucket}</Bucket><Prefix>${esc(prefix)}</Prefix><IsTruncated>false</IsTruncated>${entries.join('')}</ListMultipartUploadsResult>`,
      );
    }
    const copySource = ctx.headers['x-amz-copy-source'];
    if (ctx.method === 'PUT' && uploadId && copySource) {
      const [srcBucket, ...srcKey] = decodeURIComponent(copySource.replace(/^\//, '')).split('/');
      const m = /^bytes=(\d+)-(\d+)$/.exec(ctx.headers['x-amz-copy-source-range'] ?? '');
      const range = m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
      const src = await server.store.getObject(srcBucket!, srcKey.join('/'), range);
      if (!src) return xml(ctx, 404, `<Error><Code>NoSuchKey</Code><Message>No such key</Message></Error>`);
      const { md5 } = await server.store.putPart(bucket!, uploadId, Number(ctx.query.partNumber), src.content);
      const etag = `"${md5 || createHash('md5').digest('hex')}"`;
      return xml(
        ctx,
        200,
        `<CopyPartResult><ETag>${esc(etag)}</ETag><LastModified>${new Date().toISOString()}</LastModified></CopyPartResult>`,
      );
    }
    await next();
  };
}
