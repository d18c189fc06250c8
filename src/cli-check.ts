import type { LoadedConfig } from './config/schema.js';
import type { Logger } from './logging/logger.js';
import { openDatabase } from './db/open.js';
import { blobReferenced, blobsIn, referencedDatastores } from './db/blobs.js';
import { openConfiguredStores } from './import/open-stores.js';
import type { Datastore } from './datastores/datastore.js';

// `media-repo check-datastores`: compares what the datastores hold with what the rows say.
// Orphans (objects no row references; staging objects are not counted) waste space; missing
// blobs (rows whose object is gone) are downloads that fail. Read-only: it reports, an
// operator decides. Safe to run beside live instances: every finding is checked a second time
// after the listing, so an upload committing meanwhile is not reported.

export interface CheckReport {
  orphans: { datastore: string; location: string }[];
  missing: { datastore: string; location: string; sha256: string; example: string }[];
  /** Rows naming datastores that are not configured, and stores that cannot list objects. */
  problems: string[];
}

export async function checkDatastores(stores: Datastore[], db: Parameters<typeof blobsIn>[0]): Promise<CheckReport> {
  const report: CheckReport = { orphans: [], missing: [], problems: [] };
  const configured = new Set(stores.map((s) => s.id));
  for (const id of await referencedDatastores(db)) {
    if (!configured.has(id)) report.problems.push(`rows reference datastore '${id}', which is not configured`);
  }
  for (const ds of stores) {
    if (!ds.listObjects) {
      report.problems.push(`datastore '${ds.id}' cannot list its objects; not checked`);
      continue;
    }
    // Listing first, rows second: a blob committed during the listing has its row by then.
    const objects = new Set<string>();
    for await (const loc of ds.listObjects()) objects.add(loc);
    const blobs = await blobsIn(db, ds.id);
    const referenced = new Set(blobs.map((b) => b.location));
    for (const loc of objects) {
      if (!referenced.has(loc) && !(await blobReferenced(db, ds.id, loc)))
        report.orphans.push({ datastore: ds.id, location: loc });
    }
    for (const b of blobs) {
      // Not listed may mean committed after the listing: ask the store itself before reporting.
      if (!objects.has(b.location) && !(await ds.exists(b.location))) {
        report.missing.push({ datastore: ds.id, location: b.location, sha256: b.sha256, example: b.example });
      }
    }
  }
  return report;
}

export function formatReport(r: CheckReport): string[] {
  const lines: string[] = [];
  for (const p of r.problems) lines.push(`problem: ${p}`);
  for (const o of r.orphans)
    lines.push(`orphan: ${o.datastore}:${o.location} (no media or thumbnail row references it)`);
  for (const m of r.missing)
    lines.push(`missing: ${m.datastore}:${m.location} (sha256 ${m.sha256}, e.g. ${m.example})`);
  lines.push(
    `${r.orphans.length} orphaned object(s), ${r.missing.length} missing blob(s), ${r.problems.length} other problem(s)`,
  );
  return lines;
}

/** Runs the check for the CLI; returns the exit code (0 clean, 1 findings). */
export async function runCheckDatastores(
  config: LoadedConfig,
  log: Logger,
  print: (line: string) => void,
): Promise<number> {
  const db = await openDatabase(config.global, log);
  try {
    const stores = await openConfiguredStores(config, 'check');
    try {
      const report = await checkDatastores(stores.registry.all(), db);
      for (const line of formatReport(report)) print(line);
      return report.orphans.length + report.missing.length + report.problems.length === 0 ? 0 : 1;
    } finally {
      await stores.close();
    }
  } finally {
    await db.close();
  }
}
