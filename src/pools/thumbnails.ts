import { Piscina } from 'piscina';
import { Admission } from './admission.js';
import type {
  AudioInfoReply,
  BlurhashReply,
  DecoderReport,
  IdenticonReply,
  IdentifyReply,
  ThumbnailLimits,
  ThumbnailReply,
  ThumbnailTarget,
} from '../../workers/protocol.js';
import type { PoolThreads } from './thumbnail-threads.cjs';

/** piscina's run and wait time histograms (its type is not exported by name). */
export type PiscinaHistogram = Piscina['histogram'];

// The image pools: static thumbnails (and identicons), animated thumbnails, and blurhash.
// Separate pools so a burst of GIF animations cannot starve still thumbnails. Each pool has an
// admission gate: twice its threads may hold source bytes (running, or ready to run next), a
// bounded line waits holding nothing, and beyond that a request gets 429 instead of memory.

const WORKER = new URL('../../workers/thumbnail.js', import.meta.url);

export type PoolName = 'static' | 'animated' | 'blurhash';

export interface PoolStats {
  threads: number;
  queued: number;
  running: number;
  completed: number;
}

/** Sources held per thread: the running one and the next, so a thread never waits on a read. */
const SLOTS_PER_THREAD = 2;

function createPool(threads: number, worker: URL): Piscina {
  return new Piscina({
    filename: worker.href,
    minThreads: 0,
    maxThreads: threads,
    // The admission gate keeps piscina's own queue at most `threads` deep.
    maxQueue: threads * SLOTS_PER_THREAD,
    idleTimeout: 30_000,
    // The JS side only shuffles buffers; pixels live in native memory that this does not bound.
    resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 16 },
  });
}

/** Source bytes, or a function that reads them once the task is admitted. */
export type Source = Uint8Array | (() => Promise<Uint8Array>);

const loadSource = (s: Source): Promise<Uint8Array> => (typeof s === 'function' ? s() : Promise.resolve(s));

export interface PoolOptions {
  /** Only ever changed by tests (a worker that cannot load, for the probe). */
  worker?: URL;
  /** Whether libvips' SVG loader is open (src/pools/svg-loader.ts); read for every task, so a
   * reload that adds or removes SVG applies at once. Closed when not given. */
  svgLoader?: () => boolean;
}

/** What the pipelines use of the image pools: this process's own, or (an HTTP thread's) the
 * main thread's over a port (src/threads/shared-pools.ts). */
export type ImagePools = Pick<
  ThumbnailPools,
  'thumbnail' | 'identicon' | 'blurhash' | 'audioInfo' | 'identify' | 'tasksRun' | 'idle' | 'stats'
>;

export class ThumbnailPools {
  private readonly pools: Record<PoolName, Piscina>;
  private readonly gates: Record<PoolName, Admission>;
  private readonly submitted: Record<PoolName, number> = { static: 0, animated: 0, blurhash: 0 };
  private workerError: Error | null = null;

  private readonly svgLoader: () => boolean;

  /** A bare URL is PoolOptions.worker. */
  constructor(
    readonly threads: PoolThreads,
    maxQueue: number,
    options: PoolOptions | URL = {},
  ) {
    const opts = options instanceof URL ? { worker: options } : options;
    const worker = opts.worker ?? WORKER;
    this.svgLoader = opts.svgLoader ?? (() => false);
    // Read by libvips when the first worker loads it: loaders libvips marks untrusted stay off.
    process.env.VIPS_BLOCK_UNTRUSTED ??= '1';
    const names: PoolName[] = ['static', 'animated', 'blurhash'];
    this.pools = Object.fromEntries(names.map((n) => [n, createPool(threads[n], worker)])) as Record<PoolName, Piscina>;
    // A worker that fails to start (sharp missing or broken) is reported as an 'error' event;
    // unheard, it would crash the process with a raw stack instead of the probe's message.
    for (const p of Object.values(this.pools))
      p.on('error', (e: Error) => {
        this.workerError = e;
      });
    this.gates = Object.fromEntries(
      names.map((n) => [n, new Admission(threads[n] * SLOTS_PER_THREAD, maxQueue)]),
    ) as Record<PoolName, Admission>;
  }

  /** Start-up probe: sharp must load and encode inside a worker thread, or we refuse to start. */
  async probe(): Promise<{ vips: string; decoders: DecoderReport }> {
    try {
      if (this.workerError) throw this.workerError;
      // A worker that cannot start fails the probe through the pool's 'error' event.
      const failed = new Promise<never>((_, reject) => this.pools.static.once('error', reject));
      const r = await Promise.race([
        this.pools.static.run({ op: 'probe' }) as Promise<{ vips: string; decoders: DecoderReport }>,
        failed,
      ]);
      return { vips: r.vips, decoders: r.decoders };
    } catch (e) {
      throw new Error(
        `sharp cannot run in a worker thread (${(e as Error).message}). Reinstall with \`npm ci\` on this machine ` +
          '(sharp ships prebuilt libvips for linux-x64 glibc >= 2.31); see https://sharp.pixelplumbing.com/install',
      );
    }
  }

  /** Admits, then builds the task (reading its source only now) and runs it. */
  private async run<R>(
    pool: PoolName,
    build: () => Promise<{ task: object; transferList?: ArrayBuffer[] }>,
  ): Promise<R> {
    const gate = this.gates[pool];
    await gate.enter();
    try {
      const { task, transferList = [] } = await build();
      this.submitted[pool]++;
      return (await this.pools[pool].run({ ...task, svgLoader: this.svgLoader() }, { transferList })) as R;
    } finally {
      gate.leave();
    }
  }

  /**
   * `source` (or what `load` returns once the task is admitted) is transferred: its buffer is
   * detached here when the task is posted. It must own its whole ArrayBuffer.
   */
  thumbnail(
    source: Source,
    targets: ThumbnailTarget[],
    limits: ThumbnailLimits,
    animated: boolean,
  ): Promise<ThumbnailReply> {
    return this.run(animated ? 'animated' : 'static', async () => {
      const bytes = await loadSource(source);
      return { task: { op: 'thumbnail', source: bytes, targets, limits }, transferList: [bytes.buffer as ArrayBuffer] };
    });
  }

  identicon(seed: string, width: number, height: number): Promise<IdenticonReply> {
    return this.run('static', async () => ({ task: { op: 'identicon', seed, width, height } }));
  }

  blurhash(source: Source, xComponents: number, yComponents: number, limits: ThumbnailLimits): Promise<BlurhashReply> {
    return this.run('blurhash', async () => {
      const bytes = await loadSource(source);
      return {
        task: { op: 'blurhash', source: bytes, xComponents, yComponents, limits },
        transferList: [bytes.buffer as ArrayBuffer],
      };
    });
  }

  /** An audio file's duration, channels and waveform (media info); `source` is transferred. */
  audioInfo(source: Source, limits: ThumbnailLimits): Promise<AudioInfoReply> {
    return this.run('static', async () => {
      const bytes = await loadSource(source);
      return { task: { op: 'audio-info', source: bytes, limits }, transferList: [bytes.buffer as ArrayBuffer] };
    });
  }

  /** Type and size of an image from its header; `source` is copied (the caller keeps it). */
  identify(source: Uint8Array, limits: ThumbnailLimits): Promise<IdentifyReply> {
    return this.run('static', async () => ({ task: { op: 'identify', source, limits } }));
  }

  /** Tasks handed to each pool since start (tests prove singleflight and pre-generation with it). */
  tasksRun(): Record<PoolName, number> {
    return { ...this.submitted };
  }

  /** Tasks holding a slot of each pool's gate (running or next in line). */
  admitted(): Record<PoolName, number> {
    return {
      static: this.gates.static.admitted,
      animated: this.gates.animated.admitted,
      blurhash: this.gates.blurhash.admitted,
    };
  }

  /** True when the static pool has a free thread and nothing waiting (pre-generation runs then). */
  idle(): boolean {
    return this.gates.static.admitted < this.threads.static;
  }

  /** piscina's run and wait time histograms per pool (metrics). */
  histograms(): Record<PoolName, PiscinaHistogram> {
    return {
      static: this.pools.static.histogram,
      animated: this.pools.animated.histogram,
      blurhash: this.pools.blurhash.histogram,
    };
  }

  stats(): Record<PoolName, PoolStats> {
    const one = (name: PoolName): PoolStats => {
      const p = this.pools[name];
      const g = this.gates[name];
      const running = Math.min(g.admitted, this.threads[name]);
      return { threads: this.threads[name], queued: g.admitted - running + g.queued, running, completed: p.completed };
    };
    return { static: one('static'), animated: one('animated'), blurhash: one('blurhash') };
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.pools).map((p) => p.close()));
  }
}
