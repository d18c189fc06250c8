import { Errors } from '../errors.js';
import { insertTask } from '../db/tasks.js';
import { addImportPart, closeImport, getImport, insertImport, makeTaskDue } from '../db/exports.js';
import type { Datastore } from '../datastores/datastore.js';
import type { BodySource } from '../http/types.js';
import { IMPORT_DATA, type ImportDataParams } from '../tasks/import-data.js';
import { newArchiveId, type ArchiveServiceDeps } from './server-exports.js';
import { bodyToStaging, commitPart } from './stored-parts.js';

// The server side of MMR's archive import (admin API, repo admins): the first POST starts an
// import with one part, more parts follow in any order, and close runs the import_data task.
// Parts wait in the archives datastore, so whichever instance claims the task can read them.
// The task exists from the start (MMR answers its ID at once) but is not due until close; an
// import never closed becomes due after IMPORT_WAIT_MS and then discards what it received.

export const IMPORT_WAIT_MS = 24 * 60 * 60 * 1000;
/** An archive of more parts than this is refused (each part is one request and one row). */
export const MAX_IMPORT_PARTS = 10_000;

export interface ImportPartRequest {
  host: string;
  body: BodySource | null;
  /** The largest part accepted, in bytes. */
  maxPartBytes: number;
  datastoreIds: string[];
}

async function stagePart(deps: ArchiveServiceDeps, r: ImportPartRequest) {
  if (!r.body) throw Errors.missingParam('The body must be an archive part (.tgz)');
  const ds: Datastore | undefined = deps.datastores.pick('archives', r.datastoreIds);
  if (!ds)
    throw Errors.unavailable(`No datastore accepts archives for ${r.host}: add 'archives' to a datastore's forKinds`);
  const staging = await ds.createStaging();
  try {
    await bodyToStaging(r.body, staging, r.maxPartBytes);
    return { ds, staging };
  } catch (e) {
    await staging.abort();
    throw e;
  }
}

/** Adds a staged part to the import in the commit's transaction; Matrix errors for a closed or unknown import. */
async function storePart(
  deps: ArchiveServiceDeps,
  importId: string,
  staged: Awaited<ReturnType<typeof stagePart>>,
): Promise<void> {
  try {
    const added = await commitPart(deps.db, staged.ds, staged.staging, (q, obj) =>
      addImportPart(
        q,
        importId,
        { sizeBytes: obj.size, sha256: obj.sha256, datastoreId: staged.ds.id, location: obj.location },
        MAX_IMPORT_PARTS,
      ),
    );
    // The object stays committed: the orphan collector removes it, or an identical part reuses it.
    if (added === null) throw Errors.notFound('No open import with this ID');
    if (added === 'tooMany') throw Errors.invalidParam(`An import takes at most ${MAX_IMPORT_PARTS} parts`);
  } catch (e) {
    await staged.staging.abort().catch(() => undefined);
    throw e;
  }
}

export async function startImport(
  deps: ArchiveServiceDeps,
  r: ImportPartRequest & { localServers: string[] },
): Promise<{ import_id: string; task_id: number }> {
  const staged = await stagePart(deps, r);
  const importId = newArchiveId();
  const now = Date.now();
  const params: ImportDataParams = { import_id: importId, local_servers: r.localServers.map((s) => s.toLowerCase()) };
  let taskId = 0;
  try {
    taskId = await deps.db.tx(async (q) => {
      const id = await insertTask(q, IMPORT_DATA, { ...params }, now + IMPORT_WAIT_MS);
      await insertImport(q, { importId, origin: r.host, createdTs: now, taskId: id });
      return id;
    });
  } catch (e) {
    await staged.staging.abort().catch(() => undefined);
    throw e;
  }
  await storePart(deps, importId, staged);
  return { import_id: importId, task_id: taskId };
}

export async function addPart(deps: ArchiveServiceDeps, importId: string, r: ImportPartRequest): Promise<void> {
  // Checked before the body is read, and again when the part is recorded (a close may race).
  const imp = await getImport(deps.db, importId);
  if (!imp || imp.closedTs !== null) throw Errors.notFound('No open import with this ID');
  await storePart(deps, importId, await stagePart(deps, r));
}

/** Closes the import and makes its task due now. */
export async function closeImportRequest(deps: ArchiveServiceDeps, importId: string): Promise<void> {
  const imp = await getImport(deps.db, importId);
  if (!imp || !(await closeImport(deps.db, importId, Date.now()))) throw Errors.notFound('No open import with this ID');
  if (imp.taskId !== null) await makeTaskDue(deps.db, imp.taskId, Date.now());
  // The runner polls every few seconds; this instance looks at once when it can.
  (deps.tasks as { wake?: () => void }).wake?.();
}
