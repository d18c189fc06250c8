import type { MessagePort } from 'node:worker_threads';
import type { ImagePools, PoolName, PoolStats, Source, ThumbnailPools } from '../pools/thumbnails.js';
import type { Admission } from '../pools/admission.js';
import type { PreviewParser, PreviewPool } from '../preview/pool.js';
import { fromWire, toWire, type WireFailure } from './wire-error.js';

// The image pools and the URL-preview parse pool stay one per process (issue 19): their threads,
// admission gates and 429s are the process's, however many HTTP threads feed them. An HTTP
// thread calls them over a MessagePort: the task goes to the main thread, which admits it at the
// pool's gate and only then asks the calling thread for the source bytes (transferred, never
// copied), so a full queue still costs no read and a waiting task still holds no bytes. Results
// come back transferred. Pool figures (idle, stats) are read from shared memory that the main
// thread refreshes, so pre-generation's idle check stays synchronous.

type Op = 'thumbnail' | 'blurhash' | 'audioInfo' | 'identify' | 'identicon' | 'html' | 'oEmbed' | 'gateEnter';

type ToMain =
  | { kind: 'call'; id: number; op: Op; args: unknown[]; lazy: boolean }
  | { kind: 'gateLeave' }
  | { kind: 'source'; id: number; bytes?: Uint8Array; error?: WireFailure };

type ToThread =
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: WireFailure }
  | { kind: 'source'; id: number };

const POOLS: readonly PoolName[] = ['static', 'animated', 'blurhash'];
const FIELDS = 5; // threads, queued, running, completed, admitted
const REFRESH_MS = 100;

/** Shared figures of the three image pools (written by the main thread only). */
export function poolStatsMemory(): SharedArrayBuffer {
  return new SharedArrayBuffer(POOLS.length * FIELDS * Float64Array.BYTES_PER_ELEMENT);
}

/** The ArrayBuffers of a value's byte arrays that may be moved: each wholly owned by its view. */
function movable(value: unknown, out = new Set<ArrayBuffer>(), depth = 0): ArrayBuffer[] {
  if (value instanceof Uint8Array) {
    const b = value.buffer;
    if (b instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === b.byteLength) out.add(b);
  } else if (value && typeof value === 'object' && depth < 4) {
    for (const v of Array.isArray(value) ? value : Object.values(value)) movable(v, out, depth + 1);
  }
  return [...out];
}

export interface ServedPools {
  thumbnails: ThumbnailPools;
  previews: PreviewPool;
  previewGate: Admission;
}

/**
 * Keeps the shared pool figures current (the main thread, once for all its HTTP threads);
 * returns the stop.
 */
export function publishPoolStats(thumbnails: ThumbnailPools, stats: SharedArrayBuffer): () => void {
  const figures = new Float64Array(stats);
  const refresh = () => {
    const s = thumbnails.stats();
    const admitted = thumbnails.admitted();
    POOLS.forEach((name, i) => {
      const p = s[name];
      figures.set([p.threads, p.queued, p.running, p.completed, admitted[name]], i * FIELDS);
    });
  };
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** The main thread's side for one HTTP thread's port; returns the stop. */
export function servePools(port: MessagePort, pools: ServedPools): () => void {
  const sources = new Map<number, { resolve(b: Uint8Array): void; reject(e: Error): void }>();
  const lazy = (id: number) => () =>
    new Promise<Uint8Array>((resolve, reject) => {
      sources.set(id, { resolve, reject });
      port.postMessage({ kind: 'source', id } satisfies ToThread);
    });
  const run = (m: Extract<ToMain, { kind: 'call' }>): Promise<unknown> => {
    const a = m.args;
    const source = (m.lazy ? lazy(m.id) : a[0]) as Source;
    const t = pools.thumbnails;
    switch (m.op) {
      case 'thumbnail':
        return t.thumbnail(source, a[1] as never, a[2] as never, a[3] as boolean);
      case 'blurhash':
        return t.blurhash(source, a[1] as number, a[2] as number, a[3] as never);
      case 'audioInfo':
        return t.audioInfo(source, a[1] as never);
      case 'identify':
        return t.identify(a[0] as Uint8Array, a[1] as never);
      case 'identicon':
        return t.identicon(a[0] as string, a[1] as number, a[2] as number);
      case 'html':
        return pools.previews.html(a[0] as never);
      case 'oEmbed':
        return pools.previews.oEmbed(a[0] as never);
      case 'gateEnter':
        return pools.previewGate.enter();
    }
  };
  port.on('message', (m: ToMain) => {
    if (m.kind === 'gateLeave') return pools.previewGate.leave();
    if (m.kind === 'source') {
      const s = sources.get(m.id);
      sources.delete(m.id);
      if (m.bytes) s?.resolve(m.bytes);
      else s?.reject(fromWire(m.error ?? { message: 'source unavailable' }));
      return;
    }
    run(m).then(
      (value) => port.postMessage({ kind: 'result', id: m.id, ok: true, value } satisfies ToThread, movable(value)),
      (e: unknown) => port.postMessage({ kind: 'result', id: m.id, ok: false, error: toWire(e) } satisfies ToThread),
    );
  });
  return () => {
    for (const s of sources.values()) s.reject(new Error('the HTTP thread is gone'));
    sources.clear();
    port.close();
  };
}

/** An HTTP thread's image pools, preview parser and preview gate: all the main thread's. */
export class PoolsOverChannel implements ImagePools {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve(v: unknown): void; reject(e: Error): void; source?: () => Promise<Uint8Array> }
  >();
  private readonly submitted: Record<PoolName, number> = { static: 0, animated: 0, blurhash: 0 };
  private readonly figures: Float64Array;
  private gone: Error | null = null;

  readonly previews: PreviewParser = {
    html: (task) => this.call('html', [task], undefined, movable(task.bytes)),
    oEmbed: (task) => this.call('oEmbed', [task]),
  };

  readonly previewGate: Pick<Admission, 'enter' | 'leave'> = {
    enter: () => this.call<void>('gateEnter', []),
    leave: () => this.port.postMessage({ kind: 'gateLeave' } satisfies ToMain),
  };

  constructor(
    private readonly port: MessagePort,
    stats: SharedArrayBuffer,
  ) {
    this.figures = new Float64Array(stats);
    port.on('message', (m: ToThread) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.kind === 'source') {
        p.source!().then(
          (bytes) => port.postMessage({ kind: 'source', id: m.id, bytes } satisfies ToMain, movable(bytes)),
          (e: unknown) => port.postMessage({ kind: 'source', id: m.id, error: toWire(e) } satisfies ToMain),
        );
        return;
      }
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(fromWire(m.error));
    });
    port.on('close', () => {
      this.gone = new Error('the image pools are gone (the process is stopping)');
      for (const p of this.pending.values()) p.reject(this.gone);
      this.pending.clear();
    });
  }

  private call<R>(
    op: Op,
    args: unknown[],
    source?: () => Promise<Uint8Array>,
    transfer: ArrayBuffer[] = [],
  ): Promise<R> {
    if (this.gone) return Promise.reject(this.gone);
    const id = ++this.nextId;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, source });
      this.port.postMessage({ kind: 'call', id, op, args, lazy: !!source } satisfies ToMain, transfer);
    });
  }

  /** A lazy source stays here until the main thread admits the task; bytes are moved, not copied. */
  private withSource<R>(op: Op, source: Source, rest: unknown[]): Promise<R> {
    if (typeof source === 'function') return this.call(op, [null, ...rest], source);
    return this.call(op, [source, ...rest], undefined, movable(source));
  }

  thumbnail(...[source, targets, limits, animated]: Parameters<ImagePools['thumbnail']>) {
    this.submitted[animated ? 'animated' : 'static']++;
    return this.withSource<Awaited<ReturnType<ImagePools['thumbnail']>>>('thumbnail', source, [
      targets,
      limits,
      animated,
    ]);
  }

  blurhash(...[source, x, y, limits]: Parameters<ImagePools['blurhash']>) {
    this.submitted.blurhash++;
    return this.withSource<Awaited<ReturnType<ImagePools['blurhash']>>>('blurhash', source, [x, y, limits]);
  }

  audioInfo(...[source, limits]: Parameters<ImagePools['audioInfo']>) {
    this.submitted.static++;
    return this.withSource<Awaited<ReturnType<ImagePools['audioInfo']>>>('audioInfo', source, [limits]);
  }

  /** The caller keeps `source` (copied, as the pool itself does). */
  identify(...[source, limits]: Parameters<ImagePools['identify']>) {
    this.submitted.static++;
    return this.call<Awaited<ReturnType<ImagePools['identify']>>>('identify', [source, limits]);
  }

  identicon(...[seed, width, height]: Parameters<ImagePools['identicon']>) {
    this.submitted.static++;
    return this.call<Awaited<ReturnType<ImagePools['identicon']>>>('identicon', [seed, width, height]);
  }

  /** Tasks this thread handed to the pools. */
  tasksRun(): Record<PoolName, number> {
    return { ...this.submitted };
  }

  idle(): boolean {
    const i = POOLS.indexOf('static') * FIELDS;
    return this.figures[i + 4]! < this.figures[i]!;
  }

  stats(): Record<PoolName, PoolStats> {
    const one = (i: number): PoolStats => {
      const f = this.figures.subarray(i * FIELDS, i * FIELDS + 4);
      return { threads: f[0]!, queued: f[1]!, running: f[2]!, completed: f[3]! };
    };
    return { static: one(0), animated: one(1), blurhash: one(2) };
  }

  close(): void {
    this.port.close();
  }
}
