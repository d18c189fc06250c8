import { LRUCache } from 'lru-cache';
import type { MediaRow } from '../db/media.js';

// Media rows are immutable once written (quarantine and purge will invalidate explicitly),
// so hot downloads can skip the database. A short TTL bounds staleness across instances.
export class MediaRowCache {
  private readonly cache = new LRUCache<string, MediaRow>({ max: 50_000, ttl: 60_000 });

  get(origin: string, mediaId: string): MediaRow | undefined {
    return this.cache.get(`${origin}/${mediaId}`);
  }

  set(row: MediaRow): void {
    this.cache.set(`${row.origin}/${row.mediaId}`, row);
  }

  delete(origin: string, mediaId: string): void {
    this.cache.delete(`${origin}/${mediaId}`);
  }
}
