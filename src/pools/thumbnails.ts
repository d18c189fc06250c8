import { Piscina } from 'piscina';
import { Errors } from '../errors.js';
import type {
  BlurhashReply, IdenticonReply, ThumbnailLimits, ThumbnailReply, ThumbnailTarget,
} from '../../workers/protocol.js';
import type { PoolThreads } from './thumbnail-threads.cjs';

// The image pools: static thumbnails (and identicons), animated thumbnails, and blurhash.
// Separate pools so a burst of GIF animations cannot starve still thumbnails. Each pool has a
// bounded queue: when it is full a request gets 429 instead of growing memory.

const WORKER = new URL('../../workers/thumbnail.js', import.meta.url);

export type PoolName = 'static' | 'animated' | 'blurhash';

export interface PoolStats {
  threads: number;
  queued: number;
  running: number;
  completed: number;
}

function createPool(threads: number, maxQueue: number): Piscina {
  return new Piscina({
    filename: WORKER.href,
    minThreads: 1,
    maxThreads: threads,
    maxQueue,
    idleTimeout: 30_000,
    // The JS side only shuffles buffers; pixels live in native memory that this does not bound.
    resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 16 },
  });
}

export class ThumbnailPools {
  private readonly pools: Record<PoolName, Piscina>;
  private readonly submitted: Record<PoolName, number> = { static: 0, animated: 0, blurhash: 0 };
  /** Submitted and not finished: running plus queued. */
  private readonly inFlight: Record<PoolName, number> = { static: 0, animated: 0, blurhash: 0 };

  constructor(readonly threads: PoolThreads, maxQueue: number) {
    this.pools = {
      static: createPool(threads.static, maxQueue),
      animated: createPool(threads.animated, maxQueue),
      blurhash: createPool(threads.blurhash, maxQueue),
    };
  }

  /** Start-up probe: sharp must load and encode inside a worker thread, or we refuse to start. */
  async probe(): Promise<string> {
    try {
      const r = await this.pools.static.run({ op: 'probe' }) as { vips: string };
      return r.vips;
    } catch (e) {
      throw new Error(`sharp cannot run in a worker thread (${(e as Error).message}). Reinstall with \`npm ci\` on this machine `
        + '(sharp ships prebuilt libvips for linux-x64 glibc >= 2.31); see https://sharp.pixelplumbing.com/install');
    }
  }

  private async run<R>(pool: PoolName, task: object, transferList: ArrayBuffer[] = []): Promise<R> {
    const p = this.pools[pool];
    // piscina's own maxQueue check throws a plain Error; answer the spec's 429 instead.
    if (p.queueSize >= p.options.maxQueue) throw Errors.limitExceeded('The thumbnail queue is full; try again shortly', 1000);
    this.submitted[pool]++;
    this.inFlight[pool]++;
    try {
      return await p.run(task, { transferList }) as R;
    } catch (e) {
      if (/queue is at limit/i.test((e as Error).message)) throw Errors.limitExceeded('The thumbnail queue is full; try again shortly', 1000);
      throw e;
    } finally {
      this.inFlight[pool]--;
    }
  }

  /** `source` is transferred: its buffer is detached here once the task is queued. */
  thumbnail(source: Uint8Array, targets: ThumbnailTarget[], limits: ThumbnailLimits, animated: boolean): Promise<ThumbnailReply> {
    return this.run(animated ? 'animated' : 'static', { op: 'thumbnail', source, targets, limits }, [source.buffer as ArrayBuffer]);
  }

  identicon(seed: string, width: number, height: number): Promise<IdenticonReply> {
    return this.run('static', { op: 'identicon', seed, width, height });
  }

  blurhash(source: Uint8Array, xComponents: number, yComponents: number, limits: ThumbnailLimits): Promise<BlurhashReply> {
    return this.run('blurhash', { op: 'blurhash', source, xComponents, yComponents, limits }, [source.buffer as ArrayBuffer]);
  }

  /** Tasks handed to each pool since start (tests prove singleflight and pre-generation with it). */
  tasksRun(): Record<PoolName, number> {
    return { ...this.submitted };
  }

  /** True when the static pool has a free thread and nothing waiting (pre-generation runs then). */
  idle(): boolean {
    return this.inFlight.static < this.threads.static;
  }

  stats(): Record<PoolName, PoolStats> {
    const one = (name: PoolName): PoolStats => {
      const p = this.pools[name];
      const running = Math.min(this.inFlight[name], this.threads[name]);
      return { threads: this.threads[name], queued: this.inFlight[name] - running, running, completed: p.completed };
    };
    return { static: one('static'), animated: one('animated'), blurhash: one('blurhash') };
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.pools).map((p) => p.close()));
  }
}
