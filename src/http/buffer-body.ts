import type { BodySource } from './types.js';

/** A body already in memory (a preview image) as a BodySource, so it is stored through the same
 * upload pipeline as client uploads: same hashing, dedup and crash safety. */
export function bufferBody(bytes: Buffer, chunkBytes = 256 * 1024): BodySource {
  let offset = 0;
  let paused = false;
  let handlers: Parameters<BodySource['start']>[0] | null = null;
  const pump = (): void => {
    while (handlers && !paused && offset < bytes.length) {
      const end = Math.min(bytes.length, offset + chunkBytes);
      const chunk = bytes.subarray(offset, end);
      offset = end;
      handlers.onChunk(chunk);
    }
    if (handlers && offset >= bytes.length) {
      const h = handlers;
      handlers = null;
      h.onEnd();
    }
  };
  return {
    contentLength: bytes.length,
    start(h) {
      handlers = h;
      queueMicrotask(pump);
    },
    pause() {
      paused = true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      queueMicrotask(pump);
    },
    get complete() {
      return offset >= bytes.length && handlers === null;
    },
  };
}
