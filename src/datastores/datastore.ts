import type { Readable } from 'node:stream';
import type { DatastoreKind } from '../config/schema.js';

// What the pipelines need from a place that stores blobs. Blobs are written to a staging
// object first and only become visible under their content address on commit, so a crash
// at any instant leaves either nothing or a complete blob, never a partial one.

export interface FinishedStaging {
  sha256: string;
  size: number;
  prestaged?: { location: string; created: boolean };
}

export interface StagingWriter {
  /** Queues a chunk; false means "buffer full, pause the producer until onDrain". */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  /**
   * Appends the whole of a local file (opened without following a symlink), where the store
   * can read it off this thread itself (file staging: on the sink worker). Imports only.
   */
  appendFile?(path: string): Promise<void>;
  /**
   * Flushes, makes the bytes durable (fsync for files) and returns their SHA-256 and size.
   * `durable: false` (imports) skips the fsync where a store has one: such a staging object may
   * then only be committed through commitMany, which makes the whole batch durable first.
   *
   * `prestage: true` asks the store to also put the bytes at their content address now, while
   * keeping the staging object (file stores: a hard link, made and flushed on the sink thread),
   * and `prestaged` says where and whether that address was empty before. Uploads do this so
   * the flush is not spent inside their transaction (with PGlite, every transaction holds the
   * whole database); inside it, under the hash lock, `exists` confirms the blob is still there
   * (a purge or the orphan collector may remove an unreferenced one meanwhile) and `commit`
   * puts it back if not. The caller aborts the staging object afterwards. Stores that cannot
   * leave `prestaged` out, and the caller commits in the transaction.
   */
  finish(opts?: { durable?: boolean; prestage?: boolean }): Promise<FinishedStaging>;
  /** Drops the staging object; safe to call more than once and after finish(). */
  abort(): Promise<void>;
  readonly bytesWritten: number;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface Datastore {
  readonly id: string;
  readonly type: 'file' | 's3';
  readonly kinds: readonly DatastoreKind[];
  readonly enabled: boolean;
  createStaging(): Promise<StagingWriter>;
  /** Moves a finished staging object to the blob's address and returns its location. */
  commit(staging: StagingWriter, sha256: string): Promise<string>;
  /**
   * Commits many finished staging objects at once (imports): makes all their bytes durable,
   * moves each to its address, then makes the new directory entries durable, with one flush
   * per step instead of one per blob. Accepts staging finished with `durable: false`. Returns
   * the locations in order. Stores without it commit one at a time.
   */
  commitMany?(items: readonly { staging: StagingWriter; sha256: string }[]): Promise<string[]>;
  /**
   * Stores a small blob whose SHA-256 is already known, in one call, as durably as commit
   * (generated thumbnails: no streaming, no second hash). Stores without it use staging.
   */
  putBlob?(bytes: Buffer, sha256: string): Promise<string>;
  exists(location: string): Promise<boolean>;
  /** Reads a whole (small) blob in one call; `size` (from the row) lets it skip a stat. */
  readAll(location: string, size?: number): Promise<Buffer>;
  openStream(location: string, range?: ByteRange): Readable;
  /**
   * Random access, where the store has it (files); streams are used otherwise. Reads into
   * `into` when given (it must hold `length` bytes) and returns the filled slice.
   */
  readAt?(location: string, position: number, length: number, into?: Buffer): Promise<Buffer>;
  delete(location: string): Promise<void>;
  /**
   * Every stored object's location, staging objects excluded, in no particular order
   * (consistency checks compare it with the rows).
   */
  listObjects?(): AsyncIterable<string>;
  /**
   * When the object's bytes were last written (ms since the epoch), or null when it does not
   * exist: the orphan collector leaves young objects alone (a commit may be on its way).
   */
  modifiedAt?(location: string): Promise<number | null>;
  /** Removes staging leftovers of a crashed process; returns how many were removed. */
  sweepStaging(): Promise<number>;
  /**
   * Rejects when the store cannot take writes now (readiness: a read-only directory or bucket
   * fails every upload). Cheap enough for a load balancer's poll; leaves nothing behind.
   */
  probeWrite(): Promise<void>;
  describe(): string;
  /**
   * Where clients may fetch the blob themselves (an S3 publicBaseUrl, a CDN), or null when the
   * store has no public address; downloads may redirect there instead of proxying the bytes.
   */
  publicUrl?(location: string): string | null;
  /** Redirect to publicUrl even when the bytes are cached here (MMR's redirectWhenCached). */
  readonly redirectWhenCached?: boolean;
  /** The object's own address in its store (S3: endpoint, bucket, key): an export's `s3_url`. */
  objectUrl?(location: string): string;
  /** The location in this store that an objectUrl (of this store) names, else null. */
  locationOfObjectUrl?(url: string): string | null;
}

/**
 * Staging leftovers of other instances (sharing a directory or bucket) are only swept once they
 * are this old: younger ones may be uploads still in progress.
 */
export const FOREIGN_STAGING_MAX_AGE_MS = 60 * 60 * 1000;

export function servesKind(ds: Datastore, kind: DatastoreKind): boolean {
  return ds.enabled && (ds.kinds.includes('all') || ds.kinds.includes(kind));
}
