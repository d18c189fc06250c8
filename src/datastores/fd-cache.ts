import { closeSync, openSync } from 'node:fs';
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

  get(path: string): number {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r');
      this.fds.set(path, fd);
    }
    return fd;
  }

  forget(path: string): void {
    this.fds.delete(path);
  }

  clear(): void {
    this.fds.clear();
  }
}
