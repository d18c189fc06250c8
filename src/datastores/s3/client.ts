import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3DatastoreOpts } from '../../config/schema.js';

/** Sockets one datastore may hold open; more requests queue for a free one instead. */
const MAX_SOCKETS = 64;
const CONNECT_TIMEOUT_MS = 5000;

/**
 * An S3 client for one datastore, shaped for S3-compatible services as much as for AWS:
 * - path-style URLs (`https://host/bucket/key`): MinIO, Ceph and friends often have no
 *   wildcard DNS for bucket subdomains;
 * - checksums only where the operation requires one: with the SDK's newer default, bodies are
 *   sent with aws-chunked framing and trailing CRCs, which several S3-compatible servers store
 *   verbatim (framing included) instead of the bytes;
 * - every request bounded in time (no answer within timeoutSeconds, or a transfer stalled that
 *   long, fails it; the SDK retries it twice), and a bounded socket pool, so a stalled service
 *   cannot pile up sockets and memory without limit.
 */
export function createS3Client(o: S3DatastoreOpts, unsignedPayload = o.ssl): S3Client {
  const timeoutMs = o.timeoutSeconds * 1000;
  const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const client = new S3Client({
    endpoint: `${o.ssl ? 'https' : 'http'}://${o.endpoint}`,
    forcePathStyle: true,
    // Signing needs a region even where the service ignores it; us-east-1 is what minio-go
    // (MMR's client) signs with when none is configured.
    region: o.region || 'us-east-1',
    // Empty keys: the SDK's own chain (environment, shared files, instance roles) supplies them.
    credentials: o.accessKeyId ? { accessKeyId: o.accessKeyId, secretAccessKey: o.accessSecret } : undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // Until the response head (request body included); without throwOnRequestTimeout the
      // SDK only logs a warning when it passes.
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
      // No bytes either way for this long, also while a download's body is streaming.
      socketTimeout: timeoutMs,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    },
  });
  if (unsignedPayload) {
    client.middlewareStack.add(
      (next) => (args) => {
        skipPayloadHash(args.request as { headers?: Record<string, string>; body?: unknown });
        return next(args);
      },
      { step: 'build', name: 'mediaRepoUnsignedPayload' },
    );
  }
  return client;
}

/**
 * Over TLS, request bodies are signed as UNSIGNED-PAYLOAD (standard SigV4 for S3): TLS already
 * guards the bytes in transit, and otherwise the signer hashes every part body in one
 * synchronous call on the event loop (about 4 ms per 5 MiB part, a second SHA-256 of every
 * upload on top of the content hash). Over plain http the payload stays signed: there the
 * signature is the only integrity check.
 */
function skipPayloadHash(request: { headers?: Record<string, string>; body?: unknown }): void {
  if (request.headers && request.body instanceof Uint8Array)
    request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
}
