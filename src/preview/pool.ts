import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { PiscinaHistogram } from '../pools/thumbnails.js';
import type { PreviewParseResult, PreviewParseTask, PreviewOEmbedTask } from '../../workers/protocol.js';

// The URL-preview parse pool: HTML (and oEmbed JSON) become preview fields on a worker thread,
// so a 10 MiB page or a hostile one costs the event loop nothing. Memory is bounded by the
// preview pipeline's own gate (numWorkers previews in flight, each holding at most one page).

const WORKER = new URL('../../workers/preview.js', import.meta.url);

/** What the preview pipeline uses of the parse pool (an HTTP thread's goes to the main thread's). */
export type PreviewParser = Pick<PreviewPool, 'html' | 'oEmbed'>;

export class PreviewPool {
  private readonly pool: Piscina;
  readonly threads: number;

  constructor(numWorkers: number) {
    // MMR's default of 10 workers is about concurrency; parsing is CPU work, so threads beyond
    // the cores only add memory.
    this.threads = Math.max(1, Math.min(numWorkers, availableParallelism()));
    this.pool = new Piscina({
      filename: WORKER.href,
      minThreads: 0,
      maxThreads: this.threads,
      idleTimeout: 30_000,
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
    });
    // A worker that dies (out of its heap on a hostile page) fails its task; the pool's 'error'
    // event must not crash the process.
    this.pool.on('error', () => {});
  }

  /** The page bytes are transferred (detached here); they must own their whole ArrayBuffer. */
  html(task: Omit<PreviewParseTask, 'op'>): Promise<PreviewParseResult> {
    const buffer = task.bytes.buffer as ArrayBuffer;
    const whole = task.bytes.byteOffset === 0 && task.bytes.byteLength === buffer.byteLength;
    return this.pool.run(
      { op: 'preview-html', ...task },
      whole ? { transferList: [buffer] } : {},
    ) as Promise<PreviewParseResult>;
  }

  oEmbed(task: Omit<PreviewOEmbedTask, 'op'>): Promise<PreviewParseResult> {
    return this.pool.run({ op: 'preview-oembed', ...task }) as Promise<PreviewParseResult>;
  }

  get completed(): number {
    return this.pool.completed;
  }

  /** Parse tasks waiting for a thread (metrics). */
  get queued(): number {
    return this.pool.queueSize;
  }

  /** piscina's run and wait time histograms (metrics). */
  get histogram(): PiscinaHistogram {
    return this.pool.histogram;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
