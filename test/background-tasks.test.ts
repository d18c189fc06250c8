// The task runner's claim protocol on one database shared by two runners (two instances of a
// fleet): exactly one runs a task; a task whose holder stops heartbeating (a crash) is taken
// over; a clean stop hands the task back at once; the old holder notices it lost the claim.
import t from 'tap';
import { openPglite } from '../src/db/pglite.js';
import { migrate } from '../src/db/migrate.js';
import { claimTask, getTask, heartbeatTask, insertTask } from '../src/db/tasks.js';
import { createLogger } from '../src/logging/logger.js';
import { TaskRunner, type TaskContext } from '../src/tasks/runner.js';
import { until } from './helpers/s3.js';

const log = createLogger({ level: 'error', json: false, sink: () => undefined });
const db = await openPglite('memory://');
t.teardown(() => db.close());
await migrate(db, log);

t.test('claims: one holder at a time, a stale one is replaced', async (t) => {
  const id = await insertTask(db, 'noop', { a: 1 }, 1000);
  const a = await db.tx((q) => claimTask(q, 'A', ['noop'], 2000, 2000 - 60_000));
  t.equal(a?.id, id, 'A claims it');
  t.equal(
    await db.tx((q) => claimTask(q, 'B', ['noop'], 2001, 2001 - 60_000)),
    null,
    'B finds nothing while A heartbeats',
  );
  t.equal(
    await db.tx((q) => claimTask(q, 'B', ['other'], 2001, 0)),
    null,
    'names it has no handler for are left alone',
  );
  const b = await db.tx((q) => claimTask(q, 'B', ['noop'], 70_000, 70_000 - 60_000));
  t.equal(b?.id, id, "B takes it over once A's heartbeat is stale");
  t.notOk(await heartbeatTask(db, id, 'A', 70_001), 'A learns it lost the claim');
  t.ok(await heartbeatTask(db, id, 'B', 70_001));
  t.same((await getTask(db, id))!.params, { a: 1 });
});

t.test('runners: a stopped runner gives its task back; another finishes it once', async (t) => {
  const runs: string[] = [];
  let release: () => void = () => undefined;
  const slow = (owner: string) => async (ctx: TaskContext) => {
    runs.push(owner);
    await ctx.saveProgress({ step: 1 });
    // Runs until stopped (runner 1) or released (runner 2).
    await new Promise<void>((resolve, reject) => {
      release = resolve;
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
  };
  const r1 = new TaskRunner(db, log, new Map([['slow', slow('r1')]]), { owner: 'r1', pollMs: 50 });
  const r2 = new TaskRunner(db, log, new Map([['slow', slow('r2')]]), { owner: 'r2', pollMs: 50 });
  r1.start();
  const id = await r1.enqueue('slow', {});
  await until('r1 runs it', async () => runs.includes('r1'));
  r2.start();
  await new Promise((r) => setTimeout(r, 300));
  t.same(runs, ['r1'], 'r2 does not run a task r1 holds');
  await r1.stop();
  t.not((await getTask(db, id))!.claimedBy, 'r1', "given back on stop (free, or already r2's)");
  await until('r2 resumes it', async () => runs.includes('r2'));
  const resumed = await getTask(db, id);
  t.same(resumed!.progress, { step: 1 }, 'with the progress r1 saved');
  release();
  await until('finished', async () => (await getTask(db, id))!.endTs !== null);
  t.equal((await getTask(db, id))!.error, null);
  t.same(runs, ['r1', 'r2'], 'ran once per holder, never twice at a time');
  await r2.stop();
});

t.test('a failing task ends with its error', async (t) => {
  const r = new TaskRunner(
    db,
    log,
    new Map([
      [
        'boom',
        async () => {
          throw new Error('kaput');
        },
      ],
    ]),
    { owner: 'r3', pollMs: 50 },
  );
  r.start();
  const id = await r.enqueue('boom', {});
  await until('finished', async () => (await getTask(db, id))!.endTs !== null);
  t.equal((await getTask(db, id))!.error, 'kaput');
  await r.stop();
});
