import { BroadcastChannel } from 'node:worker_threads';

// Notices between the HTTP threads of one process: what Redis pub/sub carries between instances
// (cache invalidations, async uploads landing), without Redis. A BroadcastChannel delivers to
// every other channel of the same name in the process, never back to the one that posted; the
// poster applies its own change itself, as with Redis. Names carry the process's bus id, so two
// servers in one process (tests) never hear each other.

export class ThreadBus {
  private readonly channels = new Map<string, BroadcastChannel>();
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  private closed = false;

  constructor(readonly id: string) {}

  private channel(topic: string): BroadcastChannel {
    let c = this.channels.get(topic);
    if (!c) {
      c = new BroadcastChannel(`media-repo/${this.id}/${topic}`);
      // A listening channel must not keep a finished thread alive.
      (c as unknown as { unref(): void }).unref();
      c.onmessage = (e) => {
        const data: unknown = (e as { data?: unknown }).data;
        if (typeof data !== 'string') return;
        for (const fn of this.listeners.get(topic) ?? []) fn(data);
      };
      this.channels.set(topic, c);
    }
    return c;
  }

  /** To every other thread's subscribers of `topic`. */
  publish(topic: string, message: string): void {
    if (!this.closed) this.channel(topic).postMessage(message);
  }

  /** Returns the unsubscribe. */
  subscribe(topic: string, fn: (message: string) => void): () => void {
    this.channel(topic);
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  close(): void {
    this.closed = true;
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
    this.listeners.clear();
  }
}
