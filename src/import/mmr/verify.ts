import { createHash } from 'node:crypto';
import type { Db } from '../../db/driver.js';
import type { DatastoreRegistry } from '../../datastores/registry.js';
import { mmrBlobBatch } from '../../db/mmr-source.js';
import type { ProgressSink } from '../progress.js';

// `import mmr --verify`: re-hashes every object MMR's rows name, beside the row copy, and
// reports the ones that are missing or whose bytes no longer match their recorded sha256
// (bit rot, a half-restored backup). Reported, never fatal: the rows are adopted either way,
// as they were being served. A few objects at a time, each streamed: memory stays flat.

export interface VerifyReport {
  checked: number;
  missing: number;
  mismatched: number;
}

const BATCH = 500;
const AT_ONCE = 4;

export async function verifyMmrBlobs(
  source: Db,
  datastores: DatastoreRegistry,
  progress: ProgressSink,
  signal: AbortSignal,
): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, missing: 0, mismatched: 0 };
  for (const table of ['media', 'thumbnails'] as const) {
    let after: string[] | null = null;
    for (;;) {
      if (signal.aborted) return report;
      const batch: Awaited<ReturnType<typeof mmrBlobBatch>> = await mmrBlobBatch(source, table, after, BATCH).catch(
        (e: Error) => {
          // An MMR without thumbnails has no such table: nothing to verify there.
          if (table === 'thumbnails' && /does not exist/.test(e.message)) return { rows: [], next: null };
          throw e;
        },
      );
      const { rows, next } = batch;
      if (rows.length === 0) break;
      for (let i = 0; i < rows.length; i += AT_ONCE) {
        await Promise.all(
          rows.slice(i, i + AT_ONCE).map(async (b) => {
            const found = await hashOf(datastores, b.datastoreId, b.location);
            report.checked++;
            if (found === null) {
              report.missing++;
              progress.event({ verify: 'missing', datastore: b.datastoreId, location: b.location, table });
            } else if (found.sha256 !== b.sha256 || found.size !== b.sizeBytes) {
              report.mismatched++;
              progress.event({
                verify: 'mismatch',
                datastore: b.datastoreId,
                location: b.location,
                table,
                expected: { sha256: b.sha256, size: b.sizeBytes },
                found,
              });
            }
          }),
        );
      }
      after = next;
      if (rows.length < BATCH) break;
    }
  }
  return report;
}

/** The object's sha256 and size, or null when it does not exist. */
async function hashOf(datastores: DatastoreRegistry, id: string, location: string) {
  const ds = datastores.get(id);
  if (!ds || !(await ds.exists(location))) return null;
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of ds.openStream(location)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}
