import { LRUCache } from 'lru-cache';
import type { ThumbnailKey, ThumbnailRow } from '../db/thumbnails.js';

// Thumbnail rows by key, so a hot thumbnail costs no database query. Rows are immutable; the
// TTL bounds how long a purge on another instance goes unseen.
export function thumbnailKeyString(k: ThumbnailKey): string {
  return `${k.origin}/${k.mediaId}/${k.width}x${k.height}/${k.method}/${k.animated ? 'a' : 's'}`;
}

export class ThumbnailRowCache {
  private readonly cache = new LRUCache<string, ThumbnailRow>({ max: 50_000, ttl: 60_000 });

  get(k: ThumbnailKey): ThumbnailRow | undefined {
    return this.cache.get(thumbnailKeyString(k));
  }

  set(row: ThumbnailRow): void {
    this.cache.set(thumbnailKeyString(row), row);
  }

  /** Forgets every thumbnail of one media (`origin/mediaId`): a scan, for small changes. */
  deleteMedia(mediaKey: string): void {
    const prefix = mediaKey + '/';
    for (const k of [...this.cache.keys()]) if (k.startsWith(prefix)) this.cache.delete(k);
  }

  /** Forgets everything (a datastore transfer moved thumbnail blobs; cheaper than a key scan). */
  clear(): void {
    this.cache.clear();
  }
}
