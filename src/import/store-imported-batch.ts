import type { Readable } from 'node:stream';
import type { Datastore, StagingWriter } from '../datastores/datastore.js';
import { existingMediaIds, findBlobsByHashes, insertMediaMany, lockHashes } from '../db/media.js';
import { findStoredBlob } from '../pipelines/steps/place-blob.js';
import {
  importedState,
  insertImported,
  pipeToStaging,
  type ImportDeps,
  type ImportedMedia,
  type ImportOutcome,
} from './store-imported.js';

// Importing many items at once (src/import/store-imported.ts imports one): the same rule, with the durability and the commit paid once
// per batch instead of once per item (per item: a file fsync, a rename plus a directory fsync,
// and a transaction with its WAL flush). The order that keeps a crash harmless is unchanged:
// (1) every new item's bytes into a staging object, hashed, not yet fsync'd; (2) one
// transaction takes the hash locks (sorted, so two batches never deadlock), dedups against
// stored blobs and within the batch, and commits the blobs that are new: the store makes their
// bytes durable, renames them into place and makes the entries durable (commitMany, one flush
// per step for files; one commit per blob where a store has no commitMany, S3); (3) only then
// are the rows inserted and the transaction committed. A crash before (3) commits leaves no
// row, at most complete unreferenced blobs (the orphan collector's) and staging garbage.

export interface BatchItem {
  media: ImportedMedia;
  kind: 'local_media' | 'remote_media';
  open: () => Readable | Promise<Readable>;
  /**
   * The item is this local file (opened O_NOFOLLOW): a staging writer that can read files
   * itself (appendFile) does, so no byte passes through this thread; `open` otherwise.
   */
  path?: string;
  /** The source's hash and size: the item is refused ('mismatch') when the bytes disagree. */
  expectSha256?: string;
  expectSize?: number;
}

export interface BatchOptions {
  datastoreIds?: readonly string[];
  actor?: string;
  /** Items streamed at once (default 4). */
  concurrency?: number;
}

/** Per item, in order; one item's failure (its file vanished, a read error) is its own. */
export type BatchOutcome = ImportOutcome | { outcome: 'failed'; error: Error };

interface Staged {
  i: number;
  ds: Datastore;
  staging: StagingWriter;
  sha256: string;
  size: number;
}

interface Placed {
  datastoreId: string;
  location: string;
  /** Committed by this batch: removed again when none of its rows could be inserted. */
  created: { ds: Datastore; size: number } | null;
}

export async function importMediaBatch(
  deps: ImportDeps,
  items: readonly BatchItem[],
  opts: BatchOptions = {},
): Promise<BatchOutcome[]> {
  const out: (BatchOutcome | undefined)[] = new Array(items.length);
  // 1. What is here already: one query per origin.
  const byOrigin = new Map<string, string[]>();
  for (const it of items) {
    const list = byOrigin.get(it.media.origin) ?? [];
    list.push(it.media.mediaId);
    byOrigin.set(it.media.origin, list);
  }
  const have = new Set<string>();
  for (const [origin, ids] of byOrigin)
    for (const id of await existingMediaIds(deps.db, origin, ids)) have.add(`${origin}\0${id}`);
  const fresh: number[] = [];
  items.forEach((it, i) => {
    if (have.has(`${it.media.origin}\0${it.media.mediaId}`)) out[i] = { outcome: 'exists' };
    else fresh.push(i);
  });
  // 2. Stream the new ones into staging, a few at once, without a per-file fsync where the
  //    store flushes a batch itself (commitMany).
  const staged: Staged[] = [];
  const ids = opts.datastoreIds ?? deps.datastores.all().map((d) => d.id);
  await eachBounded(fresh, opts.concurrency ?? 4, async (i) => {
    const it = items[i]!;
    const ds = deps.datastores.pick(it.kind, ids);
    if (!ds) {
      out[i] = { outcome: 'failed', error: new Error(`no datastore accepts ${it.kind} for ${it.media.origin}`) };
      return;
    }
    let staging: StagingWriter | null = null;
    try {
      staging = await ds.createStaging();
      if (it.path !== undefined && staging.appendFile) await staging.appendFile(it.path);
      else await pipeToStaging(await it.open(), staging);
      const { sha256, size } = await staging.finish({ durable: !ds.commitMany });
      const bad = mismatch(it, sha256, size);
      if (bad) {
        await staging.abort();
        out[i] = { outcome: 'mismatch', detail: bad };
        return;
      }
      staged.push({ i, ds, staging, sha256, size });
    } catch (e) {
      await staging?.abort().catch(() => undefined);
      out[i] = { outcome: 'failed', error: e as Error };
    }
  });
  // 3. Blobs and rows in one transaction; should a row fail it, again with one savepoint per
  //    row, so that the bad row fails alone.
  const placedByHash = new Map<string, Placed>();
  const committed = new Set<StagingWriter>();
  try {
    try {
      await storeBatch(deps, items, staged, out, placedByHash, committed, opts.actor, false);
    } catch {
      // Stored blobs found by the failed attempt are looked up again under the new locks (a
      // purge may have removed one meanwhile); blobs it committed itself are reused.
      for (const [h, p] of placedByHash) if (!p.created) placedByHash.delete(h);
      await storeBatch(deps, items, staged, out, placedByHash, committed, opts.actor, true);
    }
  } catch (e) {
    for (const s of staged) out[s.i] = { outcome: 'failed', error: e as Error };
  } finally {
    for (const s of staged) if (!committed.has(s.staging)) await s.staging.abort().catch(() => undefined);
  }
  return out as BatchOutcome[];
}

function mismatch(it: BatchItem, sha256: string, size: number): string | null {
  if (it.expectSize !== undefined && size !== it.expectSize) return `${size} bytes, the source says ${it.expectSize}`;
  if (it.expectSha256 !== undefined && sha256 !== it.expectSha256.toLowerCase())
    return `sha256 ${sha256}, the source says ${it.expectSha256}`;
  return null;
}

/** One attempt at step 3; `placedByHash` and `committed` carry blobs committed by an earlier attempt. */
async function storeBatch(
  deps: ImportDeps,
  items: readonly BatchItem[],
  staged: readonly Staged[],
  out: (BatchOutcome | undefined)[],
  placedByHash: Map<string, Placed>,
  committed: Set<StagingWriter>,
  actor: string | undefined,
  savepoints: boolean,
): Promise<void> {
  if (staged.length === 0) return;
  const results = await deps.db.tx(async (q) => {
    const firstOf = new Map<string, Staged>();
    for (const s of staged) if (!firstOf.has(s.sha256)) firstOf.set(s.sha256, s);
    const hashes = [...firstOf.keys()];
    await lockHashes(q, hashes);
    // Dedup: a stored blob that still exists, else one of ours (the first item with the hash).
    const stored = await findBlobsByHashes(
      q,
      hashes.filter((h) => !placedByHash.has(h)),
    );
    const toCommit = new Map<Datastore, Staged[]>();
    for (const h of hashes) {
      if (placedByHash.has(h)) continue;
      const s = firstOf.get(h)!;
      const found = await findStoredBlob(deps.datastores, s.size, stored.get(h) ?? []);
      if (found) placedByHash.set(h, { ...found, created: null });
      else toCommit.set(s.ds, [...(toCommit.get(s.ds) ?? []), s]);
    }
    for (const [ds, list] of toCommit) {
      const locations = ds.commitMany
        ? await ds.commitMany(list.map((s) => ({ staging: s.staging, sha256: s.sha256 })))
        : await commitEach(ds, list);
      list.forEach((s, k) => {
        committed.add(s.staging);
        placedByHash.set(s.sha256, { datastoreId: ds.id, location: locations[k]!, created: { ds, size: s.size } });
        deps.datastores.addBytes(ds.id, s.size);
      });
    }
    // Rows, now that every blob they name is durable.
    const res = new Map<number, BatchOutcome>();
    const used = new Set<string>();
    const rows = staged.map((s) => {
      const media = items[s.i]!.media;
      return {
        s,
        media,
        row: { ...media, sha256: s.sha256, sizeBytes: s.size, ...whereIs(placedByHash.get(s.sha256)!) },
      };
    });
    if (!savepoints) {
      // The common case: one statement for every row, then the few quarantined or pinned ones.
      const inserted = await insertMediaMany(
        q,
        rows.map((r) => r.row),
      );
      for (const { s, media, row } of rows) {
        const ok = inserted.has(`${media.origin}\0${media.mediaId}`);
        if (ok) await importedState(q, media, s.sha256, actor);
        res.set(s.i, ok ? { outcome: 'imported', row } : { outcome: 'exists' });
        if (ok) used.add(s.sha256);
      }
    } else
      for (const { s, media, row } of rows) {
        try {
          await q.query('SAVEPOINT import_row');
          const ok = await insertImported(q, media, row, actor);
          await q.query('RELEASE SAVEPOINT import_row');
          res.set(s.i, ok ? { outcome: 'imported', row } : { outcome: 'exists' });
          if (ok) used.add(s.sha256);
        } catch (e) {
          await q.query('ROLLBACK TO SAVEPOINT import_row');
          res.set(s.i, { outcome: 'failed', error: e as Error });
        }
      }
    // A blob committed here that no row took (every ID was taken meanwhile) goes again, under
    // its lock, so that a concurrent upload of the same bytes cannot be relying on it.
    for (const [h, placed] of placedByHash) {
      if (!placed.created || used.has(h)) continue;
      await placed.created.ds.delete(placed.location);
      deps.datastores.addBytes(placed.created.ds.id, -placed.created.size);
      placedByHash.delete(h);
    }
    return res;
  });
  for (const [i, r] of results) out[i] = r;
}

function whereIs(p: Placed): { datastoreId: string; location: string } {
  return { datastoreId: p.datastoreId, location: p.location };
}

/** Stores without commitMany: their staging objects were finished durable; one commit each. */
async function commitEach(ds: Datastore, list: readonly Staged[]): Promise<string[]> {
  const locations: string[] = [];
  for (const s of list) locations.push(await ds.commit(s.staging, s.sha256));
  return locations;
}

/** Runs fn over items with at most n at once. */
async function eachBounded<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
