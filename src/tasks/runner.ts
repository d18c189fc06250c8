import { randomBytes } from 'node:crypto';
import type { Db } from '../db/driver.js';
import type { Logger } from '../logging/logger.js';
import {
  claimTask,
  finishTask,
  heartbeatTask,
  insertTask,
  releaseTask,
  saveTaskProgress,
  type TaskRow,
} from '../db/tasks.js';
import { MediaRepoError } from '../errors.js';

// Runs background tasks (rows of background_tasks) so that each one runs on exactly one
// instance of a fleet sharing the database: an instance claims a row (SKIP LOCKED, so pollers
// never wait on each other or take the same row) and heartbeats while it works. A task whose
// holder stops heartbeating (crashed, partitioned) is claimed again after `staleMs` by any
// instance; a clean shutdown gives its tasks back at once. Task handlers must therefore be
// idempotent: a resumed task may see part of its work already done.

export interface TaskContext {
  task: TaskRow;
  db: Db;
  log: Logger;
  /** Who holds the claim (for claim-checked writes in the handler's own transactions). */
  owner: string;
  /** Aborted on shutdown or when the claim was lost; handlers stop at the next blob or step. */
  signal: AbortSignal;
  /** Stores progress JSON; throws when another instance has taken the task over. */
  saveProgress(progress: Record<string, unknown>): Promise<void>;
}

export type TaskHandler = (ctx: TaskContext) => Promise<void>;

export interface RunnerOptions {
  pollMs?: number;
  heartbeatMs?: number;
  staleMs?: number;
  maxRunning?: number;
  /** Defaults to MACHINE_ID plus a random suffix: a restarted process is a new owner. */
  owner?: string;
  /** An HTTP thread's runner only creates tasks: this hands each new one to the thread that
   * runs them (the main thread) instead of polling here. */
  runsElsewhere?: () => void;
}

export class LostClaimError extends MediaRepoError<'MR_ERR_LOST_CLAIM'> {
  constructor(id: number) {
    super('MR_ERR_LOST_CLAIM', `task ${id} was taken over by another instance`);
  }
}

export class TaskRunner {
  readonly owner: string;
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly staleMs: number;
  private readonly maxRunning: number;
  private readonly running = new Map<number, { abort: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;
  private readonly runsElsewhere: (() => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly handlers: Map<string, TaskHandler>,
    opts: RunnerOptions = {},
  ) {
    this.owner = opts.owner ?? `${process.env.MACHINE_ID ?? '0'}-${randomBytes(4).toString('hex')}`;
    this.pollMs = opts.pollMs ?? 10_000;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.staleMs = opts.staleMs ?? 60_000;
    this.maxRunning = opts.maxRunning ?? 2;
    this.runsElsewhere = opts.runsElsewhere;
  }

  /** Starts polling; the first poll (resuming tasks of a crashed or stopped instance) is immediate. */
  start(): void {
    this.timer = setInterval(() => this.wake(), this.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Creates a task and looks for work at once (this instance usually takes it). */
  async enqueue(name: string, params: Record<string, unknown>): Promise<number> {
    if (!this.handlers.has(name)) throw new Error(`no handler for task ${name}`);
    const id = await insertTask(this.db, name, params, Date.now());
    this.wake();
    return id;
  }

  wake(): void {
    if (this.runsElsewhere) return this.runsElsewhere();
    if (this.stopped || this.polling) return;
    this.polling = this.poll()
      .catch((e) => this.log.warn('background task poll failed', { error: e as Error }))
      .finally(() => {
        this.polling = null;
      });
  }

  private async poll(): Promise<void> {
    while (!this.stopped && this.running.size < this.maxRunning) {
      const now = Date.now();
      const task = await this.db.tx((q) =>
        claimTask(q, this.owner, [...this.handlers.keys()], now, now - this.staleMs),
      );
      if (!task) return;
      if (this.stopped) {
        await releaseTask(this.db, task.id, this.owner);
        return;
      }
      this.launch(task);
    }
  }

  private launch(task: TaskRow): void {
    const abort = new AbortController();
    const log = this.log.child({ task: task.id, taskName: task.name });
    log.info(task.progress ? 'resuming background task' : 'starting background task', {
      params: JSON.stringify(task.params),
    });
    const beat = setInterval(() => {
      heartbeatTask(this.db, task.id, this.owner, Date.now()).then(
        (held) => {
          if (!held) abort.abort(new LostClaimError(task.id));
        },
        (e) => log.warn('task heartbeat failed', { error: e as Error }),
      );
    }, this.heartbeatMs);
    beat.unref();
    const ctx: TaskContext = {
      task,
      db: this.db,
      log,
      owner: this.owner,
      signal: abort.signal,
      saveProgress: async (p) => {
        if (!(await saveTaskProgress(this.db, task.id, this.owner, p))) {
          abort.abort(new LostClaimError(task.id));
          throw new LostClaimError(task.id);
        }
      },
    };
    const done = (async () => {
      let error: string | null = null;
      try {
        await this.handlers.get(task.name)!(ctx);
      } catch (e) {
        error = (e as Error).message ?? String(e);
      } finally {
        clearInterval(beat);
      }
      if (abort.signal.aborted) {
        // Stopped or taken over: not finished. A clean stop hands the task back for resumption.
        if (this.stopped) await releaseTask(this.db, task.id, this.owner).catch(() => undefined);
        log.info('background task interrupted', { reason: (abort.signal.reason as Error)?.message });
        return;
      }
      await finishTask(this.db, task.id, this.owner, Date.now(), error);
      if (error) log.warn('background task failed', { error });
      else log.info('background task finished');
    })()
      .catch((e) => log.error('background task bookkeeping failed', { error: e as Error }))
      .finally(() => {
        this.running.delete(task.id);
        this.wake();
      });
    this.running.set(task.id, { abort, done });
  }

  /** Interrupts running tasks at their next step and gives them back; resolves once they stopped. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.polling;
    const all = [...this.running.values()];
    for (const r of all) r.abort.abort(new Error('shutting down'));
    await Promise.all(all.map((r) => r.done));
  }
}
