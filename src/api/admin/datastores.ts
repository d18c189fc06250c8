import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { json } from '../../http/types.js';
import { estimateDatastore, listDatastores, startTransfer } from '../../pipelines/admin-datastores.js';
import type { Ctx } from '../services.js';

// MMR's datastore admin API (repo admins only): list the stores, estimate what a transfer
// would move, start one as a background task.

/** `?before_ts=` in ms; absent means now (everything stored so far), as in MMR. */
function beforeTsParam(v: string | null): number {
  if (v === null || v === '') return Date.now();
  if (!/^\d{1,15}$/.test(v))
    throw Errors.invalidParam(`before_ts: expected a timestamp in milliseconds, got '${v.slice(0, 32)}'`);
  return Number(v);
}

export async function listDatastoresHandler(ctx: Ctx): Promise<Result> {
  return json(listDatastores(ctx.svc.admin));
}

export async function sizeEstimateHandler(ctx: Ctx): Promise<Result> {
  const datastoreId = ctx.params.datastoreId ?? '';
  return json(
    await estimateDatastore(ctx.svc.admin, { datastoreId, beforeTs: beforeTsParam(ctx.req.query.get('before_ts')) }),
  );
}

export async function transferHandler(ctx: Ctx): Promise<Result> {
  return json(
    await startTransfer(ctx.svc.admin, {
      sourceId: ctx.params.sourceId ?? '',
      targetId: ctx.params.targetId ?? '',
      beforeTs: beforeTsParam(ctx.req.query.get('before_ts')),
      by: ctx.user?.userId,
      log: ctx.log,
    }),
  );
}
