import { Errors } from '../errors.js';
import type { Db } from '../db/driver.js';
import { sizeEstimate, type SizeEstimate } from '../db/blobs.js';
import { getTask, listTasks, type TaskRow } from '../db/tasks.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { Logger } from '../logging/logger.js';
import type { TaskRunner } from '../tasks/runner.js';
import { STORAGE_MIGRATION, type StorageMigrationParams } from '../tasks/storage-migration.js';

// MMR's datastore and task admin API (repo admins only): list the stores, estimate what a
// transfer would move, start one as a background task, and report on tasks.

export type { TaskRow, SizeEstimate };

export interface AdminDeps {
  db: Db;
  datastores: DatastoreRegistry;
  tasks: Pick<TaskRunner, 'enqueue'>;
}

function datastoreById(deps: AdminDeps, id: string) {
  const ds = deps.datastores.get(id);
  if (!ds) throw Errors.notFound(`No datastore with ID '${id.slice(0, 64)}' is configured`);
  return ds;
}

/** `{id: {type, uri}}` for every configured store. */
export function listDatastores(deps: AdminDeps): Record<string, { type: string; uri: string }> {
  const out: Record<string, { type: string; uri: string }> = {};
  for (const ds of deps.datastores.all()) out[ds.id] = { type: ds.type, uri: ds.describe() };
  return out;
}

export async function estimateDatastore(
  deps: AdminDeps,
  r: { datastoreId: string; beforeTs: number },
): Promise<SizeEstimate> {
  const ds = datastoreById(deps, r.datastoreId);
  return sizeEstimate(deps.db, ds.id, r.beforeTs);
}

/** Starts a storage_migration task; answers the estimate plus its task ID (MMR's response). */
export async function startTransfer(
  deps: AdminDeps,
  r: { sourceId: string; targetId: string; beforeTs: number; by: string | undefined; log: Logger },
): Promise<SizeEstimate & { task_id: number }> {
  const src = datastoreById(deps, r.sourceId);
  const dst = datastoreById(deps, r.targetId);
  if (src.id === dst.id) throw Errors.invalidParam('The source and target datastores are the same');
  const estimate = await sizeEstimate(deps.db, src.id, r.beforeTs);
  const params: StorageMigrationParams = { source: src.id, target: dst.id, before_ts: r.beforeTs };
  const taskId = await deps.tasks.enqueue(STORAGE_MIGRATION, { ...params });
  r.log.info('datastore transfer requested', {
    by: r.by,
    source: src.id,
    target: dst.id,
    beforeTs: r.beforeTs,
    taskId,
  });
  return { ...estimate, task_id: taskId };
}

export async function taskById(deps: AdminDeps, id: number): Promise<TaskRow> {
  const t = await getTask(deps.db, id);
  if (!t) throw Errors.notFound('No such task');
  return t;
}

export function taskList(deps: AdminDeps, unfinishedOnly: boolean): Promise<TaskRow[]> {
  return listTasks(deps.db, unfinishedOnly);
}
