import { constants } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import type { Queryable } from '../../db/driver.js';
import type { Logger } from '../../logging/logger.js';
import type { ProgressSink } from '../progress.js';
import { existingMediaIds } from '../../db/media.js';
import type { ImportDeps } from '../store-imported.js';
import { importMediaBatch } from '../store-imported-batch.js';
import { planLocal, planRemote, type Planned, type PlannedItem } from './map.js';
import { locate, type MediaStore } from './paths.js';
import type { SynapseSource } from './source.js';

// The import loop: read a batch of Synapse rows (keyset order), drop what needs no file (URL
// preview cache, unsafe rows) and what we already have (one query per batch), then copy the
// rest with at most `concurrency` files open at once per store batch. Each store batch is
// atomic per item (see importMediaBatch in store-imported-batch.ts): a crash or Ctrl-C at any point
// leaves a state the next run completes; Ctrl-C stops taking new batches and lets the ones in
// flight finish.

export interface RunOptions {
  serverName: string;
  store: MediaStore;
  /** Counts only; no file is copied and no row written. */
  dryRun: boolean;
  concurrency: number;
  batchSize: number;
  /** Files made durable and committed in one store batch. */
  storeBatchFiles: number;
  local: boolean;
  remote: boolean;
  datastoreIds: readonly string[];
  signal: AbortSignal;
}

/** Our side: `db` to skip what is already there (also in a dry run), `deps` to write (null in a dry run). */
export interface Target {
  db: Queryable | null;
  deps: ImportDeps | null;
}

export interface Counts {
  imported: number;
  /** Dry run: would be imported. */
  wouldImport: number;
  alreadyThere: number;
  urlCache: number;
  /** Local rows with no length and no file: MSC2246 uploads that never completed. */
  pending: number;
  missing: number;
  unsafe: number;
  sizeMismatch: number;
  hashMismatch: number;
  failed: number;
  bytes: number;
}

export interface RunResult {
  counts: Counts;
  interrupted: boolean;
}

/** Consecutive failures after which the run stops: the target (database, datastore) is down. */
const FAILURE_LIMIT = 20;
/**
 * The bytes of one store batch (its files: --batch-files, 256 by default): each batch pays one
 * pair of filesystem flushes (about 11 ms each here, nearly whatever the size) and one
 * transaction, so 10,000 files cost about 40 pairs instead of 10,000 fsyncs and commits.
 */
const STORE_BATCH_BYTES = 128 << 20;
const STORE_BATCHES_AT_ONCE = 2;

interface Ready {
  item: PlannedItem;
  mxc: string;
  size: number;
  path: string;
}

/** Splits found files into store batches of at most `files` items or STORE_BATCH_BYTES. */
function storeBatches(ready: readonly Ready[], files: number): Ready[][] {
  const out: Ready[][] = [];
  let cur: Ready[] = [];
  let bytes = 0;
  for (const r of ready) {
    if (cur.length > 0 && (cur.length >= files || bytes + r.size > STORE_BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += r.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export async function runSynapseImport(
  source: SynapseSource,
  target: Target,
  opts: RunOptions,
  progress: ProgressSink,
  log: Logger,
): Promise<RunResult> {
  const counts: Counts = {
    imported: 0,
    wouldImport: 0,
    alreadyThere: 0,
    urlCache: 0,
    pending: 0,
    missing: 0,
    unsafe: 0,
    sizeMismatch: 0,
    hashMismatch: 0,
    failed: 0,
    bytes: 0,
  };
  let consecutiveFailures = 0;
  const deps = opts.dryRun ? null : target.deps;

  // Finds one item's file and counts what needs no copy; the rest is returned to be stored.
  const prepare = async (item: PlannedItem, mxc: string): Promise<Ready | null> => {
    const found = await locate(opts.store, item.where, item.fileId);
    if (!found.ok) {
      if (found.reason === 'missing' && item.kind === 'local_media' && item.expectSize === null) {
        counts.pending++;
        return null;
      }
      counts[found.reason]++;
      progress.event({ event: found.reason === 'missing' ? 'missing-file' : 'unsafe-path', mxc, detail: found.detail });
      return null;
    }
    // The file is what Synapse was serving and often the only copy: a length that disagrees is
    // reported (so the operator can look) but the bytes are imported as they are.
    if (item.expectSize !== null && found.size !== item.expectSize) {
      counts.sizeMismatch++;
      progress.event({ event: 'size-mismatch', mxc, file: found.size, mediaLength: item.expectSize });
    }
    if (!deps) {
      counts.wouldImport++;
      counts.bytes += found.size;
      return null;
    }
    return { item, mxc, size: found.size, path: found.path };
  };

  // One store batch: its bytes made durable and its rows committed together (store-imported-batch.ts).
  const store = async (ready: Ready[]) => {
    const outcomes = await importMediaBatch(
      deps!,
      ready.map((r) => ({
        media: r.item.media,
        kind: r.item.kind,
        path: r.path,
        // O_NOFOLLOW: the checked path cannot be swapped for a symlink before it is opened.
        open: async () => (await openFile(r.path, constants.O_RDONLY | constants.O_NOFOLLOW)).createReadStream(),
      })),
      { datastoreIds: opts.datastoreIds, actor: 'import synapse', concurrency: opts.concurrency },
    );
    outcomes.forEach((r, k) => {
      const { item, mxc } = ready[k]!;
      progress.advance();
      if (r.outcome === 'failed') {
        counts.failed++;
        progress.event({ event: 'failed', mxc, error: r.error.message });
        if (++consecutiveFailures >= FAILURE_LIMIT)
          throw new Error(`${FAILURE_LIMIT} imports failed in a row; last: ${r.error.message}`);
        return;
      }
      consecutiveFailures = 0;
      if (r.outcome !== 'imported') {
        counts.alreadyThere++;
        return;
      }
      counts.imported++;
      counts.bytes += r.row!.sizeBytes;
      if (item.sha256 && item.sha256.toLowerCase() !== r.row!.sha256) {
        counts.hashMismatch++;
        progress.event({ event: 'hash-mismatch', mxc, file: r.row!.sha256, synapse: item.sha256 });
      }
      log.debug('imported', { mxc, bytes: r.row!.sizeBytes });
    });
  };

  const batch = async (planned: Planned[]) => {
    const todo: { item: PlannedItem; mxc: string }[] = [];
    for (const p of planned) {
      if ('skip' in p) {
        if (p.skip === 'url_cache') counts.urlCache++;
        else {
          counts.unsafe++;
          progress.event({ event: 'unsafe-row', mxc: p.mxc, detail: p.detail });
        }
        progress.advance();
        continue;
      }
      todo.push({ item: p.plan, mxc: `mxc://${p.plan.media.origin}/${p.plan.media.mediaId}` });
    }
    const fresh = await dropExisting(target.db, todo);
    const skipped = todo.length - fresh.length;
    counts.alreadyThere += skipped;
    progress.advance(skipped);
    const ready: Ready[] = [];
    await bounded(fresh, opts.concurrency, opts.signal, async (t) => {
      const r = await prepare(t.item, t.mxc);
      if (r) ready.push(r);
      else progress.advance();
    });
    // Two store batches at once: one streams its files while the other commits.
    await bounded(storeBatches(ready, opts.storeBatchFiles), STORE_BATCHES_AT_ONCE, opts.signal, store);
  };

  if (opts.local && !opts.signal.aborted) {
    progress.phase('local media', await source.countLocal());
    let after = '';
    for (;;) {
      const rows = await source.localBatch(after, opts.batchSize);
      if (rows.length === 0 || opts.signal.aborted) break;
      await batch(rows.map((r) => planLocal(r, opts.serverName)));
      after = rows[rows.length - 1]!.mediaId;
    }
  }
  if (opts.remote && !opts.signal.aborted) {
    progress.phase('remote media', await source.countRemote());
    let after = { origin: '', mediaId: '' };
    for (;;) {
      const rows = await source.remoteBatch(after, opts.batchSize);
      if (rows.length === 0 || opts.signal.aborted) break;
      await batch(rows.map((r) => planRemote(r, opts.serverName)));
      const last = rows[rows.length - 1]!;
      after = { origin: last.origin, mediaId: last.mediaId };
    }
  }
  return { counts, interrupted: opts.signal.aborted };
}

/** The items whose mxc our database does not have yet (one query per origin in the batch). */
async function dropExisting<T extends { item: PlannedItem }>(db: Queryable | null, todo: T[]): Promise<T[]> {
  if (!db || todo.length === 0) return todo;
  const byOrigin = new Map<string, string[]>();
  for (const t of todo) {
    const list = byOrigin.get(t.item.media.origin) ?? [];
    list.push(t.item.media.mediaId);
    byOrigin.set(t.item.media.origin, list);
  }
  const have = new Set<string>();
  for (const [origin, ids] of byOrigin) {
    for (const id of await existingMediaIds(db, origin, ids)) have.add(`${origin}\0${id}`);
  }
  return todo.filter((t) => !have.has(`${t.item.media.origin}\0${t.item.media.mediaId}`));
}

/** Runs fn over items with at most n at once; stops taking new ones once signal is aborted. */
async function bounded<T>(items: T[], n: number, signal: AbortSignal, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal.aborted) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
