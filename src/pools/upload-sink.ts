import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { rm } from 'node:fs/promises';
import type { SinkReply, SinkRequest } from '../../workers/protocol.js';

const WORKER_FILE = new URL('../../workers/upload-sink.js', import.meta.url);

/** Bytes a session may have queued for its worker before the socket is paused. */
const HIGH_WATER_MARK = 1 << 20;
/**
 * Each session owns at most MAX_SLOTS buffers of SLOT_BYTES that travel to the worker and back
 * (transferred both ways), so an upload allocates nothing per chunk and its memory is bounded.
 * Measured alternatives: a fresh transferred buffer per chunk let dead chunks pile up in the
 * worker heap (+89-117 MiB RSS over a 1 GiB upload); a SharedArrayBuffer ring was bounded but
 * V8 copies into shared memory slowly (63% of the event loop went to Buffer.copy).
 */
const SLOT_BYTES = 256 << 10;
const MAX_SLOTS = 16;

interface Pending {
  resolve(v: SinkReply): void;
  reject(e: Error): void;
}

/** One upload's staging file, written and hashed on a sink worker. */
export class SinkSession {
  /** Bytes sent to the worker and not acknowledged yet. */
  inFlight = 0;
  bytesWritten = 0;
  error: Error | null = null;
  private drainCbs: (() => void)[] = [];
  waiter: Pending | null = null;
  private readonly free: ArrayBuffer[] = [];
  private slots = 0;
  /** Chunks that arrived while every slot was out (the socket is paused by then). */
  private overflow: Buffer[] = [];
  private overflowBytes = 0;
  /** The slot being filled: chunks are packed into whole slots before posting, so a 64 KiB
   * socket chunk costs a copy, not a message (per-chunk postMessage and its garbage were 29%
   * of the event loop when streaming remote media through at 150 MiB/s). */
  private filling: ArrayBuffer | null = null;
  private fillLen = 0;

  constructor(
    readonly id: number,
    readonly path: string,
    private readonly worker: SinkWorker,
  ) {}

  /** Queues the chunk for the worker (one copy, into a slot); false asks the producer to pause. */
  write(chunk: Buffer): boolean {
    if (this.error) throw this.error;
    let off = 0;
    while (off < chunk.length) {
      if (!this.filling) {
        const slot = this.overflow.length ? undefined : this.takeSlot();
        if (!slot) {
          // Every slot is out: keep the rest in order behind them (the caller's chunk is only valid now: copy).
          const rest = Buffer.from(chunk.subarray(off));
          this.overflow.push(rest);
          this.overflowBytes += rest.length;
          break;
        }
        this.filling = slot;
        this.fillLen = 0;
      }
      off += this.fill(chunk.subarray(off));
    }
    return this.inFlight + this.fillLen + this.overflowBytes < HIGH_WATER_MARK;
  }

  /** Copies as much of `bytes` as fits into the filling slot; posts the slot when full. */
  private fill(bytes: Buffer): number {
    const n = Math.min(SLOT_BYTES - this.fillLen, bytes.length);
    new Uint8Array(this.filling!, this.fillLen, n).set(bytes.subarray(0, n));
    this.fillLen += n;
    if (this.fillLen === SLOT_BYTES) this.post();
    return n;
  }

  private takeSlot(): ArrayBuffer | undefined {
    if (this.free.length) return this.free.pop();
    if (this.slots < MAX_SLOTS) {
      this.slots++;
      return new ArrayBuffer(SLOT_BYTES);
    }
    return undefined;
  }

  /** Sends the filling slot (if it holds anything) to the worker. */
  private post(): void {
    const slot = this.filling;
    if (!slot || this.fillLen === 0) return;
    const len = this.fillLen;
    this.filling = null;
    this.fillLen = 0;
    if (this.error) return;
    this.inFlight += len;
    this.worker.post({ op: 'write', id: this.id, buf: slot, len }, [slot]);
  }

  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  /** Resolves once every queued chunk has been posted, so a following message comes after them. */
  async flushed(): Promise<void> {
    while (this.overflowBytes > 0 && !this.error) await new Promise<void>((r) => this.drainCbs.push(r));
    this.post();
  }

  /** The worker failed or died: drop queued bytes and wake a paused producer to see the error. */
  fail(e: Error): void {
    this.error = e;
    this.overflow = [];
    this.overflowBytes = 0;
    this.filling = null;
    this.fillLen = 0;
    this.inFlight = 0;
    const cbs = this.drainCbs;
    this.drainCbs = [];
    for (const cb of cbs) cb();
  }

  acked(len: number, slot: ArrayBuffer): void {
    this.inFlight -= len;
    this.bytesWritten += len;
    this.free.push(slot);
    // Move waiting bytes into free slots, in order; a last partial slot stays the filling one.
    while (this.overflow.length && (this.filling || this.free.length)) {
      if (!this.filling) {
        this.filling = this.free.pop()!;
        this.fillLen = 0;
      }
      const piece = this.overflow[0]!;
      const n = this.fill(piece);
      this.overflowBytes -= n;
      if (n === piece.length) this.overflow.shift();
      else this.overflow[0] = piece.subarray(n);
    }
    if (this.inFlight + this.fillLen + this.overflowBytes < HIGH_WATER_MARK && this.drainCbs.length) {
      const cbs = this.drainCbs;
      this.drainCbs = [];
      for (const cb of cbs) cb();
    }
  }

  request(msg: SinkRequest): Promise<SinkReply> {
    return new Promise((resolve, reject) => {
      if (this.worker.dead) return reject(this.error ?? new Error('upload sink worker is gone'));
      // (Re-)register: an abort after finish() must still receive its reply.
      this.worker.sessions.set(this.id, this);
      this.waiter = { resolve, reject };
      this.worker.post(msg);
    });
  }
}

/** Where a sink's messages go: its own Worker, or (an HTTP thread's view) a port attached to one. */
type SinkEnd = Pick<Worker, 'postMessage' | 'on'> & { terminate?(): Promise<number> };

class SinkWorker {
  private readonly worker: SinkEnd;
  dead = false;
  readonly sessions = new Map<number, SinkSession>();

  constructor(onExit: (w: SinkWorker) => void, port?: MessagePort) {
    if (port) {
      this.worker = port as unknown as SinkEnd;
    } else {
      const worker = new Worker(WORKER_FILE, { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
      worker.unref();
      this.worker = worker;
    }
    this.worker.on('message', (m: SinkReply) => this.onReply(m));
    const die = (e: Error) => {
      if (this.dead) return;
      this.dead = true;
      for (const s of this.sessions.values()) {
        s.fail(e);
        s.waiter?.reject(e);
      }
      this.sessions.clear();
      onExit(this);
    };
    if (port) {
      port.on('close', () => die(new Error('upload sink worker is gone')));
    } else {
      this.worker.on('error', die);
      this.worker.on('exit', (code: number) => die(new Error(`upload sink worker exited with code ${code}`)));
    }
  }

  /** A port on which another thread's sessions are answered by this worker. */
  attach(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.worker.postMessage({ op: 'attach', port: port1 }, [port1]);
    return port2;
  }

  post(msg: SinkRequest, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(msg, transfer);
  }

  private onReply(m: SinkReply): void {
    const s = this.sessions.get(m.id);
    if (!s) return;
    if (m.op === 'ack') return s.acked(m.len, m.buf);
    if (m.op === 'error') {
      const e: NodeJS.ErrnoException = new Error(m.message);
      e.code = m.code;
      s.fail(e);
    }
    const w = s.waiter;
    s.waiter = null;
    if (!w) return;
    if (m.op === 'error') w.reject(s.error!);
    else w.resolve(m);
  }

  terminate(): Promise<number> {
    if (this.worker.terminate) return this.worker.terminate();
    (this.worker as unknown as MessagePort).close();
    return Promise.resolve(0);
  }
}

/** An HTTP thread's view of the process's sinks: one port per sink worker, and a way to get a
 * fresh port once a worker died and was replaced. */
export interface AttachedSinks {
  ports: MessagePort[];
  reconnect(index: number): Promise<MessagePort>;
}

// Worker threads that hash and write uploads (see workers/upload-sink.ts). Sessions are
// spread round-robin; a worker that dies fails its sessions and is replaced. One set per
// process: HTTP threads reach it through attached ports (attach()).
export class UploadSinkPool {
  private workers: SinkWorker[] = [];
  private next = 0;
  private ids = 0;
  readonly size: number;

  constructor(size: number | AttachedSinks = Math.max(1, Math.min(4, availableParallelism()))) {
    if (typeof size === 'number') {
      this.size = size;
      for (let i = 0; i < size; i++) this.workers.push(this.spawn());
    } else {
      this.size = size.ports.length;
      const remote = size;
      const connect = (i: number, port: MessagePort): SinkWorker =>
        new SinkWorker(() => {
          if (this.closed) return;
          remote.reconnect(i).then(
            (fresh) => {
              if (!this.closed) this.workers[i] = connect(i, fresh);
              else fresh.close();
            },
            () => undefined, // the process is stopping
          );
        }, port);
      this.workers = remote.ports.map((p, i) => connect(i, p));
    }
  }

  /** Ports for an HTTP thread, one per worker (its sessions get their own ids there). */
  attach(): MessagePort[] {
    return this.workers.map((w) => w.attach());
  }

  /** One fresh port to worker `index` (after the one a thread had died with its worker). */
  attachOne(index: number): MessagePort {
    return this.workers[index % this.workers.length]!.attach();
  }

  private spawn(): SinkWorker {
    return new SinkWorker((dead) => {
      const i = this.workers.indexOf(dead);
      if (i >= 0 && !this.closed) this.workers[i] = this.spawn();
    });
  }

  private closed = false;

  async open(path: string): Promise<SinkSession> {
    const worker = this.workers[this.next++ % this.workers.length]!;
    const s = new SinkSession(++this.ids, path, worker);
    try {
      await s.request({ op: 'open', id: s.id, path });
    } catch (e) {
      this.release(s);
      throw e;
    }
    return s;
  }

  /**
   * `durable: false`: no fsync; the caller must make the file durable before committing it.
   * `linkRoot`: the file is also linked at its content address under that root (see linked).
   */
  async finish(
    s: SinkSession,
    durable = true,
    linkRoot?: string,
  ): Promise<{ sha256: string; size: number; linked?: { location: string; created: boolean } }> {
    await s.flushed();
    if (s.error) throw s.error;
    const req: SinkRequest = { op: 'finish', id: s.id };
    if (!durable) req.durable = false;
    if (linkRoot && durable) req.linkRoot = linkRoot;
    const r = await s.request(req);
    if (r.op !== 'done') throw new Error(`unexpected sink reply ${r.op}`);
    this.release(s);
    return { sha256: r.sha256, size: r.size, linked: r.linked };
  }

  /** Appends a whole local file, read and hashed on the worker (imports). */
  async append(s: SinkSession, source: string): Promise<void> {
    await s.flushed();
    if (s.error) throw s.error;
    const r = await s.request({ op: 'append', id: s.id, source });
    if (r.op !== 'appended') throw new Error(`unexpected sink reply ${r.op}`);
    s.bytesWritten += r.len;
  }

  /** Drops the staging file; from this thread if the worker cannot (it died). */
  async abort(s: SinkSession): Promise<void> {
    try {
      await s.request({ op: 'abort', id: s.id, path: s.path });
    } catch {
      await rm(s.path, { force: true });
    } finally {
      this.release(s);
    }
  }

  release(s: SinkSession): void {
    for (const w of this.workers) w.sessions.delete(s.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
