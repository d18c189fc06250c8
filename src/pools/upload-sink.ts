import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { rm } from 'node:fs/promises';
import type { SinkReply, SinkRequest } from '../../workers/protocol.js';

const WORKER_FILE = new URL('../../workers/upload-sink.js', import.meta.url);

/** Bytes a session may have in flight to its worker before the socket is paused. */
const HIGH_WATER_MARK = 1 << 20;

interface Pending {
  resolve(v: SinkReply): void;
  reject(e: Error): void;
}

/** One upload's staging file, written and hashed on a sink worker. */
export class SinkSession {
  inFlight = 0;
  bytesWritten = 0;
  error: Error | null = null;
  private drainCbs: (() => void)[] = [];
  waiter: Pending | null = null;

  constructor(readonly id: number, readonly path: string, private readonly worker: SinkWorker) {}

  /** Copies or transfers the chunk to the worker; false asks the producer to pause. */
  write(chunk: Buffer): boolean {
    if (this.error) throw this.error;
    // Transfer only a buffer that owns its whole ArrayBuffer (never Node's shared slab).
    const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer);
    const buf = own ? (chunk.buffer as ArrayBuffer) : new Uint8Array(chunk).buffer;
    this.inFlight += chunk.length;
    this.worker.post({ op: 'write', id: this.id, buf, len: chunk.length }, [buf]);
    return this.inFlight < HIGH_WATER_MARK;
  }

  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  acked(len: number): void {
    this.inFlight -= len;
    this.bytesWritten += len;
    if (this.inFlight < HIGH_WATER_MARK && this.drainCbs.length) {
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

class SinkWorker {
  private readonly worker: Worker;
  dead = false;
  readonly sessions = new Map<number, SinkSession>();

  constructor(onExit: (w: SinkWorker) => void) {
    this.worker = new Worker(WORKER_FILE);
    this.worker.unref();
    this.worker.on('message', (m: SinkReply) => this.onReply(m));
    const die = (e: Error) => {
      if (this.dead) return;
      this.dead = true;
      for (const s of this.sessions.values()) {
        s.error = e;
        s.waiter?.reject(e);
        s.acked(s.inFlight); // wake a paused producer so it sees the error
      }
      this.sessions.clear();
      onExit(this);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`upload sink worker exited with code ${code}`)));
  }

  post(msg: SinkRequest, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(msg, transfer);
  }

  private onReply(m: SinkReply): void {
    const s = this.sessions.get(m.id);
    if (!s) return;
    if (m.op === 'ack') return s.acked(m.len);
    if (m.op === 'error') {
      s.error = new Error(m.message);
      (s.error as NodeJS.ErrnoException).code = m.code;
      s.acked(s.inFlight);
    }
    const w = s.waiter;
    s.waiter = null;
    if (!w) return;
    if (m.op === 'error') w.reject(s.error!);
    else w.resolve(m);
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

// Worker threads that hash and write uploads (see workers/upload-sink.ts). Sessions are
// spread round-robin; a worker that dies fails its sessions and is replaced.
export class UploadSinkPool {
  private workers: SinkWorker[] = [];
  private next = 0;
  private ids = 0;

  constructor(readonly size = Math.max(1, Math.min(4, availableParallelism()))) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
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

  async finish(s: SinkSession): Promise<{ sha256: string; size: number }> {
    const r = await s.request({ op: 'finish', id: s.id });
    if (r.op !== 'done') throw new Error(`unexpected sink reply ${r.op}`);
    this.release(s);
    return { sha256: r.sha256, size: r.size };
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
