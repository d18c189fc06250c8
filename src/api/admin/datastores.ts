import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { json } from '../../http/types.js';
import { sizeEstimate } from '../../db/blobs.js';
import { STORAGE_MIGRATION, type StorageMigrationParams } from '../../tasks/storage-migration.js';
import type { Ctx } from '../services.js';

// MMR's datastore admin API (repo admins only): list the stores, estimate what a transfer
// would move, start one as a background task.

/** `?before_ts=` in ms; absent means now (everything stored so far), as in MMR. */
function beforeTsParam(v: string | null): number {
  if (v === null || v === '') return Date.now();
  if (!/^\d{1,15}$/.test(v)) throw Errors.invalidParam(`before_ts: expected a timestamp in milliseconds, got '${v.slice(0, 32)}'`);
  return Number(v);
}

function datastoreParam(ctx: Ctx, name: string) {
  const id = ctx.params[name] ?? '';
  const ds = ctx.svc.datastores.get(id);
  if (!ds) throw Errors.notFound(`No datastore with ID '${id.slice(0, 64)}' is configured`);
  return ds;
}

/** `{id: {type, uri}}` for every configured store. */
export async function listDatastoresHandler(ctx: Ctx): Promise<Result> {
  const out: Record<string, { type: string; uri: string }> = {};
  for (const ds of ctx.svc.datastores.all()) out[ds.id] = { type: ds.type, uri: ds.describe() };
  return json(out);
}

export async function sizeEstimateHandler(ctx: Ctx): Promise<Result> {
  const ds = datastoreParam(ctx, 'datastoreId');
  return json(await sizeEstimate(ctx.svc.db, ds.id, beforeTsParam(ctx.req.query.get('before_ts'))));
}

/** Starts a storage_migration task; answers the estimate plus task_id (MMR's response). */
export async function transferHandler(ctx: Ctx): Promise<Result> {
  const src = datastoreParam(ctx, 'sourceId');
  const dst = datastoreParam(ctx, 'targetId');
  if (src.id === dst.id) throw Errors.invalidParam('The source and target datastores are the same');
  const beforeTs = beforeTsParam(ctx.req.query.get('before_ts'));
  const estimate = await sizeEstimate(ctx.svc.db, src.id, beforeTs);
  const params: StorageMigrationParams = { source: src.id, target: dst.id, before_ts: beforeTs };
  const taskId = await ctx.svc.tasks.enqueue(STORAGE_MIGRATION, { ...params });
  ctx.log.info('datastore transfer requested', { by: ctx.user?.userId, source: src.id, target: dst.id, beforeTs, taskId });
  return json({ ...estimate, task_id: taskId });
}
