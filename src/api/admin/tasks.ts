import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { json } from '../../http/types.js';
import { taskById, taskList, type TaskRow } from '../../pipelines/admin-datastores.js';
import type { Ctx } from '../services.js';

// MMR's task status API: `tasks/{id}`, `tasks/all`, `tasks/unfinished`. MMR's fields, plus
// `progress` (what the task reports about itself) which MMR did not have.

function present(t: TaskRow) {
  return {
    task_id: t.id,
    task_name: t.name,
    params: t.params,
    start_ts: t.startTs,
    end_ts: t.endTs ?? 0,
    is_finished: t.endTs !== null,
    error_message: t.error ?? '',
    progress: t.progress ?? {},
  };
}

export async function taskHandler(ctx: Ctx): Promise<Result> {
  const raw = ctx.params.taskId ?? '';
  if (!/^\d{1,15}$/.test(raw)) throw Errors.invalidParam(`taskId: expected a number, got '${raw.slice(0, 32)}'`);
  return json(present(await taskById(ctx.svc.admin, Number(raw))));
}

export async function listTasksHandler(ctx: Ctx, unfinishedOnly: boolean): Promise<Result> {
  return json((await taskList(ctx.svc.admin, unfinishedOnly)).map(present));
}
