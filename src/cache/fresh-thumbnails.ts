import type { ThumbnailKey } from '../db/thumbnails.js';
import { thumbnailKeyString } from './thumbnail-rows.js';

// Thumbnails generated moments ago whose blob and row are still being written. The first
// request is answered from these bytes (storing costs an fsync and a transaction, which would
// otherwise sit on its latency), and requests arriving before the row exists are too; the entry
// goes away once the store settles, when the row cache takes over. Shutdown drains the writes.

export interface FreshThumbnail {
  key: ThumbnailKey;
  bytes: Buffer;
  sha256: string;
  contentType: string;
  outWidth: number;
  outHeight: number;
}

export class FreshThumbnails {
  private readonly byKey = new Map<string, FreshThumbnail>();
  private readonly pending = new Set<Promise<unknown>>();

  get(key: ThumbnailKey): FreshThumbnail | undefined {
    return this.byKey.get(thumbnailKeyString(key));
  }

  /** Serves `fresh` until `store` settles (it must not reject: the caller logs failures). */
  hold(fresh: FreshThumbnail, store: Promise<unknown>): void {
    const k = thumbnailKeyString(fresh.key);
    this.byKey.set(k, fresh);
    const p: Promise<unknown> = store.finally(() => {
      if (this.byKey.get(k) === fresh) this.byKey.delete(k);
      this.pending.delete(p);
    });
    this.pending.add(p);
  }

  /** Waits for every write in progress (shutdown). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  get writing(): number {
    return this.pending.size;
  }
}
