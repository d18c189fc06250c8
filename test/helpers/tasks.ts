import { SECRET, type TestRepo } from './repo.js';

export interface FinishedTask {
  error_message: string;
  progress: Record<string, number>;
}

/** Polls the admin task endpoint until the background task has finished (30 s at most). */
export async function waitTask(r: TestRepo, id: number): Promise<FinishedTask> {
  for (let i = 0; i < 600; i++) {
    const res = await r.fetch(`/_matrix/media/unstable/admin/tasks/${id}`, { token: SECRET });
    const task = (await res.json()) as FinishedTask & { is_finished: boolean };
    if (task.is_finished) return task;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`task ${id} did not finish`);
}
