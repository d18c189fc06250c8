import type { Db, Queryable } from '../../db/driver.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';
import {
  mmrAttributeBatch,
  mmrCount,
  mmrDatastoreIds,
  mmrMediaBatch,
  mmrMissingColumns,
  mmrReservationBatch,
  mmrReservedBatch,
  mmrTables,
  mmrThumbnailBatch,
} from '../../db/mmr-source.js';
import {
  adoptAttributes,
  adoptMedia,
  adoptQuarantinedHashes,
  adoptReservations,
  adoptReserved,
  adoptThumbnails,
} from '../../db/adopt.js';
import { readCheckpoint, writeCheckpoint } from '../../db/import-checkpoints.js';
import type { ProgressSink } from '../progress.js';
import { verifyMmrBlobs, type VerifyReport } from './verify.js';

// Adopting an MMR deployment in place: MMR's rows are copied into media-repo's tables, and the
// objects stay where MMR wrote them, under the same datastore IDs and locations (our stores
// read any location a row names; new uploads get content addresses). MMR's database is only
// read. Steps:
//   1. Preflight: the tables and columns this needs exist, and every datastore ID a row names
//      is configured here. Anything wrong stops the run before a row is written.
//   2. Each table in turn, a batch at a time in keyset order: one target transaction per batch
//      inserts what is missing (ON CONFLICT DO NOTHING) and records the batch's last key in
//      import_checkpoints, so a run killed at any instant resumes after the last committed
//      batch, and a repeated run inserts nothing.
//   3. MMR's quarantine of a hash (it refuses re-uploads of quarantined bytes) becomes ours.
//   4. With verify, every object is re-hashed beside steps 2-3 and mismatches are reported.

export const MMR_JOB = 'mmr';

export interface AdoptOptions {
  batchSize: number;
  /** Pause between batches, sparing a live MMR database. */
  pauseMs: number;
  verify: boolean;
  /** uploads.maxAgeSeconds in ms: MMR's pending reservations keep no creation time. */
  reservationLifetimeMs: number;
}

export interface AdoptDeps {
  source: Db;
  target: Db;
  datastores: DatastoreRegistry;
  progress: ProgressSink;
  signal: AbortSignal;
}

export interface PhaseCount {
  read: number;
  inserted: number;
}

export interface AdoptReport {
  phases: Record<string, PhaseCount>;
  quarantinedHashes: number;
  interrupted: boolean;
  verify: VerifyReport | null;
}

interface Phase {
  name: string;
  table: string;
  batch(after: unknown, limit: number): Promise<{ rows: unknown[]; next: unknown }>;
  write(q: Queryable, rows: unknown[]): Promise<number>;
}

export class AdoptError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot adopt this MMR database:\n  ${problems.join('\n  ')}`);
    this.name = 'AdoptError';
  }
}

function phasesFor(source: Db, tables: Record<string, boolean>, opts: AdoptOptions): Phase[] {
  const all: (Phase | null)[] = [
    {
      name: 'media',
      table: 'media',
      batch: (a, n) => mmrMediaBatch(source, a as string[] | null, n, tables.restricted_media!),
      write: (q, rows) => adoptMedia(q, rows as Parameters<typeof adoptMedia>[1]),
    },
    tables.thumbnails
      ? {
          name: 'thumbnails',
          table: 'thumbnails',
          batch: (a, n) => mmrThumbnailBatch(source, a as unknown[] | null, n),
          write: (q, rows) => adoptThumbnails(q, rows as Parameters<typeof adoptThumbnails>[1]),
        }
      : null,
    tables.media_attributes
      ? {
          name: 'attributes',
          table: 'media_attributes',
          batch: (a, n) => mmrAttributeBatch(source, a as string[] | null, n),
          write: (q, rows) => adoptAttributes(q, rows as Parameters<typeof adoptAttributes>[1]),
        }
      : null,
    tables.reserved_media
      ? {
          name: 'reserved',
          table: 'reserved_media',
          batch: (a, n) => mmrReservedBatch(source, a as string[] | null, n),
          write: (q, rows) => adoptReserved(q, rows as Parameters<typeof adoptReserved>[1], Date.now()),
        }
      : null,
    tables.expiring_media
      ? {
          name: 'reservations',
          table: 'expiring_media',
          batch: (a, n) => mmrReservationBatch(source, a as string[] | null, n),
          write: (q, rows) =>
            adoptReservations(q, rows as Parameters<typeof adoptReservations>[1], opts.reservationLifetimeMs),
        }
      : null,
  ];
  return all.filter((p): p is Phase => p !== null);
}

/** Step 1: what would stop the adoption, and the tables there are. */
export async function preflight(source: Db, datastores: DatastoreRegistry) {
  const tables = await mmrTables(source);
  if (!tables.media)
    throw new AdoptError(['no `media` table: this is not an MMR database (or --from names the wrong one)']);
  const problems = (await mmrMissingColumns(source)).map(
    (c) => `column ${c} is missing: this MMR is older than 1.3; run MMR 1.3 once so it migrates its schema`,
  );
  if (problems.length) throw new AdoptError(problems);
  for (const id of await mmrDatastoreIds(source, Boolean(tables.thumbnails))) {
    if (!datastores.get(id)) {
      problems.push(
        `rows name datastore '${id}', which is not configured: add it to datastores with the same id and MMR's opts`,
      );
    }
  }
  if (problems.length) throw new AdoptError(problems);
  return tables;
}

/** Rows per MMR table, for --dry-run and the progress totals. */
export async function sourceCounts(source: Db, tables: Record<string, boolean>, opts: AdoptOptions) {
  const out: Record<string, number> = {};
  for (const p of phasesFor(source, tables, opts)) out[p.name] = await mmrCount(source, p.table);
  return out;
}

export async function adoptMmr(deps: AdoptDeps, opts: AdoptOptions): Promise<AdoptReport> {
  const { source, target, progress, signal } = deps;
  const tables = await preflight(source, deps.datastores);
  const counts = await sourceCounts(source, tables, opts);
  const phases = phasesFor(source, tables, opts);
  // A finished earlier run starts over (inserting only what is new); an unfinished one resumes.
  const saved = await readCheckpoint(target, MMR_JOB);
  const resume = saved && !saved.finished ? saved : null;
  let start = resume ? phases.findIndex((p) => p.name === resume.phase) : 0;
  if (start < 0) start = 0;
  const report: AdoptReport = { phases: {}, quarantinedHashes: 0, interrupted: false, verify: null };
  const verifying = opts.verify ? verifyMmrBlobs(source, deps.datastores, progress, signal) : null;

  for (let i = 0; i < phases.length && !report.interrupted; i++) {
    const phase = phases[i]!;
    const count: PhaseCount = { read: 0, inserted: 0 };
    report.phases[phase.name] = count;
    if (i < start) continue;
    let after: unknown = i === start && resume ? resume.cursor : null;
    progress.phase(phase.name, counts[phase.name]);
    for (;;) {
      if (signal.aborted) {
        report.interrupted = true;
        break;
      }
      const { rows, next } = await phase.batch(after, opts.batchSize);
      if (rows.length === 0) break;
      count.inserted += await target.tx(async (q) => {
        const n = await phase.write(q, rows);
        await writeCheckpoint(q, MMR_JOB, { phase: phase.name, cursor: next, finished: false });
        return n;
      });
      count.read += rows.length;
      after = next;
      progress.advance(rows.length);
      if (rows.length < opts.batchSize) break;
      if (opts.pauseMs > 0) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
    // The next phase starts from its beginning, also after a crash between phases.
    const nextPhase = phases[i + 1];
    if (!report.interrupted && nextPhase) {
      await writeCheckpoint(target, MMR_JOB, { phase: nextPhase.name, cursor: null, finished: false });
    }
  }
  if (!report.interrupted) {
    report.quarantinedHashes = await adoptQuarantinedHashes(target, Date.now());
    await writeCheckpoint(target, MMR_JOB, { phase: 'done', cursor: null, finished: true });
  }
  if (verifying) report.verify = await verifying;
  return report;
}
