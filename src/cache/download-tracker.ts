import { LRUCache } from 'lru-cache';

// Counts recent downloads per blob for the blob cache's admission rule (MMR's download
// tracker). Memory is bounded twice: entries expire trackedMinutes after a blob's first
// counted download, and at most maxTracked blobs are remembered (the least recently
// downloaded are forgotten first, which only delays their admission).
interface Window {
  count: number;
  startedAt: number;
}

export class DownloadTracker {
  private readonly windows: LRUCache<string, Window>;

  constructor(
    private readonly windowMs: number,
    maxTracked: number,
    private readonly now: () => number,
  ) {
    this.windows = new LRUCache<string, Window>({ max: maxTracked });
  }

  /** Counts one download and returns the count within the current window. */
  hit(key: string): number {
    const t = this.now();
    const w = this.windows.get(key);
    if (!w || t - w.startedAt >= this.windowMs) {
      this.windows.set(key, { count: 1, startedAt: t });
      return 1;
    }
    w.count++;
    return w.count;
  }

  /** Downloads counted in the current window, without counting one. */
  count(key: string): number {
    const w = this.windows.peek(key);
    return w && this.now() - w.startedAt < this.windowMs ? w.count : 0;
  }

  get size(): number {
    return this.windows.size;
  }
}
