// Named locks shared by the threads of one process, in a SharedArrayBuffer: what Redis locks
// (src/redis/locks.ts) are between instances, without a round trip. A name hashes to one slot of
// an Int32Array; a slot holds 0 (free) or its holder's token. Taking and releasing are one
// compare-and-swap each, and a waiter sleeps on the slot (Atomics.waitAsync) until the holder's
// release wakes it, so a thread waiting on another's remote fetch or thumbnail is woken at once
// rather than at its next poll.
//
// Two names may share a slot: one then waits for the other's unrelated work, as it would for
// a busy lock, and callers already treat a lock as advice (coordinate() does the work itself
// after waitMs). There is no expiry: a thread that dies takes the process with it (the HTTP
// threads' crash rule), and one that hangs is waited for only waitMs.

/** Slots in a table: 4096 x 4 bytes; a collision costs a wait, never a wrong answer. */
export const DEFAULT_SLOTS = 4096;

/** Atomics.waitAsync (V8, Node 16+); this project's TypeScript lib predates its declaration. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: unknown };
  }
).waitAsync;

export interface LockToken {
  readonly slot: number;
  readonly value: number;
}

/** The memory a process's threads share; pass it to each thread (workerData) and wrap it there. */
export function sharedLockMemory(slots = DEFAULT_SLOTS): SharedArrayBuffer {
  return new SharedArrayBuffer(slots * Int32Array.BYTES_PER_ELEMENT);
}

/** FNV-1a, 32 bits: cheap, and spreads hex digests and mxc keys well enough for slot choice. */
function slotOf(name: string, slots: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % slots;
}

export class SharedLocks {
  private readonly slots: Int32Array;
  private seq = 0;

  /**
   * `thread`: this thread's number, 0-2047, distinct per thread: it is in every token this
   * thread hands out, so no thread can release another's hold.
   */
  constructor(
    memory: SharedArrayBuffer,
    private readonly thread: number,
  ) {
    if (!Number.isInteger(thread) || thread < 0 || thread > 2047) throw new RangeError(`thread ${thread}`);
    this.slots = new Int32Array(memory);
  }

  /** Takes the lock if it is free; null when it is held (by anyone, this thread included). */
  tryLock(name: string): LockToken | null {
    const slot = slotOf(name, this.slots.length);
    // 20 bits of sequence under 11 of thread, never 0 (0 is "free").
    this.seq = (this.seq % 0xfffff) + 1;
    const value = (this.thread << 20) | this.seq;
    return Atomics.compareExchange(this.slots, slot, 0, value) === 0 ? { slot, value } : null;
  }

  /** Releases a hold this thread took (a stale or foreign token changes nothing) and wakes waiters. */
  unlock(token: LockToken): void {
    if (Atomics.compareExchange(this.slots, token.slot, token.value, 0) === token.value)
      Atomics.notify(this.slots, token.slot);
  }

  /** Whether the name's slot is held now. */
  held(name: string): boolean {
    return Atomics.load(this.slots, slotOf(name, this.slots.length)) !== 0;
  }

  /** Resolves once the name's slot is free (or was at the call), or after timeoutMs. */
  async waitFree(name: string, timeoutMs: number): Promise<void> {
    const slot = slotOf(name, this.slots.length);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = Atomics.load(this.slots, slot);
      const left = deadline - Date.now();
      if (now === 0 || left <= 0) return;
      const w = waitAsync(this.slots, slot, now, left);
      if (!w.async) continue;
      // A pending waitAsync does not keep the event loop alive: the timer does, for as long as
      // the wait may last (a thread with nothing else to do would otherwise just end).
      const alive = setTimeout(() => undefined, left);
      try {
        await w.value;
      } finally {
        clearTimeout(alive);
      }
    }
  }
}
