import { LRUCache } from 'lru-cache';
import type { StoredPreview } from '../db/url-previews.js';

// Recent preview answers in memory: a link posted in a busy room is previewed by every client
// that renders it, within seconds; this spares each of them a database query. Bounded by
// entries (each is one JSON document of a few hundred bytes) and by age, since rows may be
// purged or, across instances, written by another process.
export class PreviewResults {
  private readonly lru = new LRUCache<string, StoredPreview>({ max: 10_000, ttl: 10 * 60_000, ttlAutopurge: false });

  get(key: string): StoredPreview | undefined {
    return this.lru.get(key);
  }

  set(key: string, value: StoredPreview): void {
    this.lru.set(key, value);
  }

  clear(): void {
    this.lru.clear();
  }
}
