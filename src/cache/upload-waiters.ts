// Downloads of a created-but-empty async upload wait here until the PUT lands. A local
// upload wakes them at once; polling covers uploads that land on another instance.
export class UploadWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  notify(key: string): void {
    const set = this.waiting.get(key);
    if (!set) return;
    this.waiting.delete(key);
    for (const wake of set) wake();
  }

  /** Resolves when notified, when `poll` says the media exists, or false at the deadline. */
  wait(key: string, timeoutMs: number, poll: () => Promise<boolean>, pollEveryMs = 1000): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      const set = this.waiting.get(key) ?? new Set();
      this.waiting.set(key, set);
      const settle = (v: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(poller);
        set.delete(wake);
        if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key);
        resolve(v);
      };
      const wake = () => settle(true);
      set.add(wake);
      const deadline = setTimeout(() => settle(false), timeoutMs);
      const poller = setInterval(() => {
        poll().then(
          (found) => found && settle(true),
          () => undefined,
        );
      }, pollEveryMs);
    });
  }

  size(): number {
    let n = 0;
    for (const s of this.waiting.values()) n += s.size;
    return n;
  }
}
