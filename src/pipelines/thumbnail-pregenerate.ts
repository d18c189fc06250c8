import type { ThumbnailsSection } from '../config/schema.js';
import { byteLimit } from '../config/limits.js';
import type { MediaRow } from '../db/media.js';
import { listThumbnails, type ThumbnailKey } from '../db/thumbnails.js';
import { thumbnailKeyString } from '../cache/thumbnail-rows.js';
import type { Logger } from '../logging/logger.js';
import { generateThumbnails, thumbnailKey, type ThumbnailDeps } from './thumbnail.js';
import { SPEC_DEFAULT_SIZES } from './thumbnail-size.js';

// After an image upload, the spec's five default sizes are generated in the background so the
// first client request is a cache hit. Low priority: one source at a time, and only while the
// static pool has a free thread; a bounded backlog drops the oldest work rather than grow.

interface Job {
  media: MediaRow;
  cfg: ThumbnailsSection;
  datastoreIds: readonly string[];
}

const IDLE_POLL_MS = 50;

export class Pregenerator {
  private readonly queue: Job[] = [];
  private pumping = false;
  private stopped = false;

  constructor(
    private readonly deps: ThumbnailDeps,
    private readonly log: Logger,
    private readonly maxBacklog = 1000,
  ) {}

  enqueue(media: MediaRow, cfg: ThumbnailsSection, datastoreIds: readonly string[]): void {
    if (this.stopped || !cfg.pregenerate || media.sizeBytes > byteLimit(cfg.maxSourceBytes)) return;
    if (this.queue.length >= this.maxBacklog) {
      const dropped = this.queue.shift()!;
      this.log.debug('thumbnail pre-generation backlog full; dropped the oldest', { mediaId: dropped.media.mediaId });
    }
    this.queue.push({ media, cfg, datastoreIds });
    void this.pump();
  }

  get backlog(): number {
    return this.queue.length;
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.queue.length > 0) {
        if (!this.deps.thumbnails.idle()) {
          await new Promise((r) => setTimeout(r, IDLE_POLL_MS));
          continue;
        }
        const job = this.queue.shift()!;
        await this.run(job).catch((e: Error) => {
          this.log.debug('thumbnail pre-generation skipped', { mediaId: job.media.mediaId, reason: e.message });
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  private async run({ media, cfg, datastoreIds }: Job): Promise<void> {
    const stored = new Set((await listThumbnails(this.deps.db, media.origin, media.mediaId)).map(thumbnailKeyString));
    const keys = new Map<string, ThumbnailKey>();
    for (const s of SPEC_DEFAULT_SIZES) {
      // `animated: null` gives the key a request without the parameter maps to.
      const key = thumbnailKey(media, { ...s, animated: null }, cfg);
      const k = thumbnailKeyString(key);
      if (!stored.has(k)) keys.set(k, key);
    }
    if (keys.size === 0) return;
    const list = [...keys.values()];
    const group = generateThumbnails(this.deps, { media, keys: list, cfg, datastoreIds });
    // Requests for these keys that arrive meanwhile wait for this work instead of repeating it.
    list.forEach((key, i) => {
      this.deps.thumbnailFlights
        .run(thumbnailKeyString(key), () => group.then((g) => [g.results[i]!]))
        .catch(() => undefined);
    });
    // One source at a time, writes included.
    await (
      await group
    ).stored;
  }
}
