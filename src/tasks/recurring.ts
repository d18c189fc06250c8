import type { Db } from '../db/driver.js';
import { insertRecurringTask } from '../db/tasks.js';
import type { Logger } from '../logging/logger.js';
import type { TaskRunner } from './runner.js';

// A background task that recurs (every intervalMs) and runs once per period across the fleet:
// each instance looks on its own timer, the database lets one insert the period's task row
// (insertRecurringTask), and the runner hands the row to exactly one instance. Instances need
// no agreement on who is in charge, and a crashed one is simply not the one that looks next.
// A jittered task's row is inserted with a start a random delay ahead, and the runner claims it
// only once that start has come: the delay holds no runner slot, and a restart keeps it.

export interface RecurringSettings {
  /** 0 turns the task off. */
  intervalMs: number;
  params: Record<string, unknown>;
  /** Each period's run starts up to this much later than due, at random (0: at once). */
  jitterMs?: number;
}

/** How often to look: the interval itself when short, else a few minutes (so a due period starts promptly). */
const MAX_LOOK_MS = 5 * 60_000;
const MIN_LOOK_MS = 1000;

export function scheduleRecurring(
  db: Db,
  runner: TaskRunner,
  log: Logger,
  name: string,
  settings: () => RecurringSettings,
): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let looking: Promise<void> = Promise.resolve();
  const look = async () => {
    const s = settings(); // read each time: a live reload may change it
    if (s.intervalMs <= 0) return;
    const now = Date.now();
    const start = now + Math.floor(Math.random() * Math.max(0, s.jitterMs ?? 0));
    const id = await db.tx((q) => insertRecurringTask(q, name, s.params, start, now - s.intervalMs));
    if (id !== null) runner.wake();
  };
  const lookThenWait = () => {
    looking = look()
      .catch((e) => log.warn('could not schedule a recurring task', { task: name, error: e as Error }))
      .finally(() => {
        if (stopped) return;
        const interval = settings().intervalMs;
        timer = setTimeout(
          lookThenWait,
          interval > 0 ? Math.min(MAX_LOOK_MS, Math.max(MIN_LOOK_MS, interval)) : MAX_LOOK_MS,
        );
        timer.unref();
      });
  };
  // The first look is at once: a period that passed while the fleet was down starts now.
  lookThenWait();
  return {
    /** Stops looking; resolves once a look in progress is done (before the database closes). */
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await looking;
    },
  };
}
