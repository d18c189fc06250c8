import { close, closeSync, open } from 'node:fs';
import { LRUCache } from 'lru-cache';

// Open file descriptors of recently read blobs. Blobs are immutable under their content
// address, so a cached descriptor never goes stale while the file exists; a purge must call
// forget() (an unlinked file stays readable through an open descriptor until it is closed).
// Saves open/fstat/close on every small download: three of the four syscalls per request.
export class FdCache {
  private readonly fds: LRUCache<string, number>;

  constructor(max: number) {
    this.fds = new LRUCache<string, number>({ max, dispose: (fd) => closeSync(fd) });
  }

  /** A cached descriptor, or undefined: a hit also says the blob was read recently. */
  peek(location: string): number | undefined {
    return this.fds.get(location);
  }

  /** Keyed by location; the path is only computed (and validated) on a miss. */
  get(location: string, pathOf: () => string): Promise<number> {
    const hit = this.fds.get(location);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      let path: string;
      try {
        path = pathOf();
      } catch (e) {
        return reject(e);
      }
      open(path, 'r', (err, fd) => {
        if (err) return reject(err);
        const raced = this.fds.get(location);
        if (raced !== undefined) {
          close(fd, () => undefined); // a concurrent miss cached one first
          return resolve(raced);
        }
        this.fds.set(location, fd);
        resolve(fd);
      });
    });
  }

  forget(location: string): void {
    this.fds.delete(location);
  }

  clear(): void {
    this.fds.clear();
  }
}
