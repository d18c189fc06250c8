import t from 'tap';
import { Worker } from 'node:worker_threads';
import { SharedLocks, sharedLockMemory } from '../src/threads/shared-locks.js';

// Named locks shared by threads through a SharedArrayBuffer (src/threads/shared-locks.ts), over
// real worker threads.

const WORKER = new URL('./helpers/shared-locks-worker.js', import.meta.url);

function start(data: Record<string, unknown>) {
  const w = new Worker(WORKER, { workerData: data });
  const next = () => new Promise<unknown>((resolve, reject) => (w.once('message', resolve), w.once('error', reject)));
  return { w, next };
}

t.test('one holder per name; a release by a stale token frees nothing', async (t) => {
  const memory = sharedLockMemory(64);
  const a = new SharedLocks(memory, 1);
  const b = new SharedLocks(memory, 2);
  const held = a.tryLock('mxc://a/b');
  t.ok(held);
  t.equal(b.tryLock('mxc://a/b'), null, 'another thread is refused');
  t.equal(a.tryLock('mxc://a/b'), null, 'so is the holder itself (not re-entrant)');
  t.ok(a.held('mxc://a/b'));
  a.unlock(held!);
  t.notOk(a.held('mxc://a/b'), 'released');
  const again = b.tryLock('mxc://a/b');
  t.ok(again, 'free for the next');
  a.unlock(held!);
  t.ok(b.held('mxc://a/b'), "the first holder's old token does not release the new hold");
  b.unlock(again!);
  t.throws(() => new SharedLocks(memory, 4096), RangeError, 'thread numbers are bounded');
});

t.test('four threads increment under the lock without losing an update', async (t) => {
  const memory = sharedLockMemory();
  const counter = new SharedArrayBuffer(8);
  const rounds = 150;
  const threads = [1, 2, 3, 4].map((thread) =>
    start({ memory, counter, thread, mode: 'count', rounds, name: 'hash-lock' }),
  );
  t.teardown(() => Promise.all(threads.map((x) => x.w.terminate())));
  t.same(await Promise.all(threads.map((x) => x.next())), ['ready', 'ready', 'ready', 'ready']);
  const cells = new Int32Array(counter);
  const finished = Promise.all(threads.map((x) => x.next()));
  Atomics.store(cells, 1, 1);
  Atomics.notify(cells, 1);
  await finished;
  t.equal(Atomics.load(cells, 0), 4 * rounds, 'every read-yield-write ran alone');
  t.notOk(new SharedLocks(memory, 9).held('hash-lock'), 'and the lock is free at the end');
});

t.test('a waiter is woken by the release, not by its timeout', async (t) => {
  const memory = sharedLockMemory();
  const holder = start({
    memory,
    counter: new SharedArrayBuffer(4),
    thread: 1,
    mode: 'hold',
    rounds: 0,
    name: 'remote',
  });
  t.teardown(() => holder.w.terminate());
  t.equal(await holder.next(), 'holding');
  const here = new SharedLocks(memory, 0);
  t.equal(here.tryLock('remote'), null, 'held by the other thread');
  // A minute's timeout: the test finishes only if the release wakes the waiter.
  const woken = here.waitFree('remote', 60_000).then(() => 'woken');
  holder.w.postMessage('release');
  t.equal(await holder.next(), 'released');
  t.equal(await woken, 'woken');
  t.ok(here.tryLock('remote'), 'and it can take the lock');
});
