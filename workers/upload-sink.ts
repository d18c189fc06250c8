import { parentPort, type MessagePort } from 'node:worker_threads';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SinkAttach, SinkReply, SinkRequest } from './protocol.js';
import { contentAddress } from './content-address.js';

// Hashes (SHA-256) and writes upload bytes on a worker thread, so the event loop only copies
// chunks off the socket: on one thread SHA-256 runs at about 1.25 GiB/s here, which alone is
// nginx's whole upload throughput. Blocking file calls are fine on this thread: it does
// nothing else. Each session is one staging file.

interface Session {
  fd: number;
  path: string;
  hash: Hash;
  size: number;
  failed: boolean;
}

/** The one buffer appended files are read through (one message at a time on this thread). */
const copyBuf = Buffer.allocUnsafe(1 << 20);

function syncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Links a durable staging file at its content address under root, durably: new directories'
 * parents and the final directory are flushed. An address already there holds the same bytes
 * (one only ever appears whole), and is flushed too: another upload may have linked it a moment
 * ago and not flushed yet, and a row must not outlive a crash that loses its entry. Here rather
 * than on the event loop, where these five calls cost more than the whole transaction.
 */
function linkAtAddress(staging: string, root: string, sha256: string): { location: string; created: boolean } {
  const location = contentAddress(sha256);
  const target = join(root, location);
  const dir = dirname(target);
  const first = mkdirSync(dir, { recursive: true });
  if (first) {
    for (let d = dir; ; d = dirname(d)) {
      syncDir(dirname(d));
      if (d === first) break;
    }
  }
  let created = true;
  try {
    linkSync(staging, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    created = false;
  }
  syncDir(dir);
  return { location, created };
}

/**
 * Answers one thread's sessions on `port`: the thread that started this worker, and each HTTP
 * thread attached to it (src/pools/upload-sink.ts), each with its own session ids.
 */
function serve(port: MessagePort): void {
  const sessions = new Map<number, Session>();
  const reply = (m: SinkReply) => port.postMessage(m);
  /** The buffer goes back to its thread for reuse: no allocation (or garbage) per chunk. */
  const ack = (id: number, len: number, buf: ArrayBuffer) =>
    port.postMessage({ op: 'ack', id, len, buf } satisfies SinkReply, [buf]);
  const fail = (id: number, e: unknown) => {
    const s = sessions.get(id);
    if (s) s.failed = true;
    const err = e as NodeJS.ErrnoException;
    reply({ op: 'error', id, message: err.message, code: err.code });
  };
  // A thread that goes away leaves its open staging files to the next start's sweep.
  port.on('close', () => {
    for (const s of sessions.values()) {
      try {
        closeSync(s.fd);
      } catch {
        // closed already
      }
    }
    sessions.clear();
  });
  port.on('message', (m: SinkRequest | SinkAttach) => {
    if (m.op === 'attach') return serve(m.port);
    const s = sessions.get(m.id);
    try {
      switch (m.op) {
        case 'open':
          sessions.set(m.id, {
            fd: openSync(m.path, 'wx', 0o644),
            path: m.path,
            hash: createHash('sha256'),
            size: 0,
            failed: false,
          });
          return reply({ op: 'opened', id: m.id });
        case 'write': {
          if (!s || s.failed) return ack(m.id, m.len, m.buf);
          const chunk = Buffer.from(m.buf, 0, m.len);
          s.hash.update(chunk);
          let off = 0;
          while (off < chunk.length) off += writeSync(s.fd, chunk, off, chunk.length - off);
          s.size += chunk.length;
          return ack(m.id, m.len, m.buf);
        }
        case 'finish': {
          if (!s || s.failed) throw new Error('upload sink session failed earlier');
          // Durable before anyone may rename it into place (crash safety: blob before row),
          // unless the caller makes a whole batch durable itself before renaming (imports).
          if (m.durable !== false) fsyncSync(s.fd);
          closeSync(s.fd);
          sessions.delete(m.id);
          const sha256 = s.hash.digest('hex');
          const linked = m.linkRoot ? linkAtAddress(s.path, m.linkRoot, sha256) : undefined;
          return reply({ op: 'done', id: m.id, sha256, size: s.size, linked });
        }
        case 'append': {
          if (!s || s.failed) throw new Error('upload sink session failed earlier');
          const src = openSync(m.source, constants.O_RDONLY | constants.O_NOFOLLOW);
          let len = 0;
          try {
            for (let n; (n = readSync(src, copyBuf, 0, copyBuf.length, null)) > 0; len += n) {
              const chunk = copyBuf.subarray(0, n);
              s.hash.update(chunk);
              for (let off = 0; off < n;) off += writeSync(s.fd, chunk, off, n - off);
            }
          } finally {
            closeSync(src);
          }
          s.size += len;
          return reply({ op: 'appended', id: m.id, len });
        }
        case 'abort':
          if (s) {
            sessions.delete(m.id);
            try {
              closeSync(s.fd);
            } catch {
              // already closed by finish
            }
          }
          rmSync(m.path, { force: true });
          return reply({ op: 'aborted', id: m.id });
      }
    } catch (e) {
      if (m.op === 'write') ack(m.id, m.len, m.buf);
      fail(m.id, e);
    }
  });
}

serve(parentPort! as MessagePort);
