import { parentPort, workerData } from 'node:worker_threads';
import { SharedLocks } from '../../src/threads/shared-locks.js';

// One of several threads contending for a SharedLocks name (test/shared-locks.test.ts):
// 'count' does `rounds` read-yield-write increments of a shared counter under the lock (lost
// updates without it); 'hold' takes the name and keeps it until told to release.

const { memory, counter, thread, mode, rounds, name } = workerData as {
  memory: SharedArrayBuffer;
  counter: SharedArrayBuffer;
  thread: number;
  mode: 'count' | 'hold';
  rounds: number;
  name: string;
};
const locks = new SharedLocks(memory, thread);
const cell = new Int32Array(counter);
const port = parentPort!;

async function take() {
  for (;;) {
    const token = locks.tryLock(name);
    if (token) return token;
    await locks.waitFree(name, 60_000);
  }
}

if (mode === 'count') {
  // All threads start together (cell 1 is the starting gun), so their rounds overlap.
  port.postMessage('ready');
  Atomics.wait(cell, 1, 0);
  for (let i = 0; i < rounds; i++) {
    const token = await take();
    const seen = Atomics.load(cell, 0);
    await new Promise((r) => setTimeout(r, 0));
    Atomics.store(cell, 0, seen + 1);
    locks.unlock(token);
  }
  port.postMessage('done');
} else {
  const token = await take();
  port.postMessage('holding');
  port.once('message', () => {
    locks.unlock(token);
    port.postMessage('released');
  });
}
