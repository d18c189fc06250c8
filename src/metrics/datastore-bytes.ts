import type { Readable } from 'node:stream';
import type { Datastore, StagingWriter } from '../datastores/datastore.js';
import type { MediaMetrics } from './media-metrics.js';
import { S3Bucket } from '../datastores/s3/bucket.js';

// Counts the bytes each datastore writes (at commit, so aborted uploads do not count) and
// reads (whole reads, random reads, streams) into media_datastore_bytes_total. A proxy keeps
// every other member of the store as it is, optional methods included.

export function countDatastoreBytes(ds: Datastore, m: MediaMetrics): Datastore {
  // S3 requests are counted by operation (the SDK command's name: PutObject, GetObject, ...).
  const bucket = (ds as { bucket?: unknown }).bucket;
  if (bucket instanceof S3Bucket) bucket.onOperation = (operation) => m.s3Operations.inc({ operation });
  const written = m.datastoreBytes.labels(ds.id, 'write');
  const read = m.datastoreBytes.labels(ds.id, 'read');
  const wrapped: Partial<Datastore> = {
    async commit(staging: StagingWriter, sha256: string) {
      const location = await ds.commit(staging, sha256);
      written.inc(staging.bytesWritten);
      return location;
    },
    async readAll(location: string, size?: number) {
      const buf = await ds.readAll(location, size);
      read.inc(buf.length);
      return buf;
    },
    openStream(location, range) {
      const stream: Readable = ds.openStream(location, range);
      // Counted where the producer hands bytes over, so no 'data' listener changes the flow.
      const push = stream.push.bind(stream);
      stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (chunk && typeof (chunk as Buffer).length === 'number') read.inc((chunk as Buffer).length);
        return push(chunk, encoding);
      };
      return stream;
    },
  };
  if (ds.putBlob) {
    wrapped.putBlob = async (bytes, sha256) => {
      const location = await ds.putBlob!(bytes, sha256);
      written.inc(bytes.length);
      return location;
    };
  }
  if (ds.readAt) {
    wrapped.readAt = async (location, position, length, into) => {
      const buf = await ds.readAt!(location, position, length, into);
      read.inc(buf.length);
      return buf;
    };
  }
  return new Proxy(ds, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(wrapped, prop)) {
        // Counted only while the store itself has the method: an optional one it drops (or a
        // test removes) stays absent instead of calling into nothing.
        return typeof Reflect.get(target, prop, target) === 'function' ? wrapped[prop as keyof Datastore] : undefined;
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
