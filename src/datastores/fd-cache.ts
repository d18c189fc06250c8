import { close, open } from 'node:fs';
import { LRUCache } from 'lru-cache';

interface Entry {
  fd: number;
  /** Async reads in flight on this descriptor. */
  users: number;
  /** Evicted or forgotten while in use: close when the last user releases it. */
  dropped: boolean;
}

// Open file descriptors of recently read blobs. Blobs are immutable under their content
// address, so a cached descriptor never goes stale while the file exists; a purge must call
// forget() (an unlinked file stays readable through an open descriptor until it is closed).
// Saves open/fstat/close on every small download: three of the four syscalls per request.
// A descriptor is never closed under an async read: the kernel could hand its number to the
// next open() and the read would return another file's bytes.
export class FdCache {
  private readonly fds: LRUCache<string, Entry>;

  constructor(max: number) {
    this.fds = new LRUCache<string, Entry>({
      max,
      dispose: (e) => {
        e.dropped = true;
        if (e.users === 0) close(e.fd, () => undefined);
      },
    });
  }

  /** A cached descriptor for a synchronous read, or undefined; a hit means the blob is hot. */
  peek(location: string): number | undefined {
    return this.fds.get(location)?.fd;
  }

  /** Holds a descriptor for an async read; call the returned release when the read is done. */
  async acquire(location: string, pathOf: () => string): Promise<{ fd: number; release: () => void }> {
    let e = this.fds.get(location);
    if (!e) {
      const path = pathOf();
      const fd = await new Promise<number>((resolve, reject) =>
        open(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd))),
      );
      e = this.fds.get(location);
      if (e)
        close(fd, () => undefined); // a concurrent miss cached one first
      else {
        e = { fd, users: 0, dropped: false };
        this.fds.set(location, e);
      }
    }
    const entry = e;
    entry.users++;
    return {
      fd: entry.fd,
      release: () => {
        entry.users--;
        if (entry.dropped && entry.users === 0) close(entry.fd, () => undefined);
      },
    };
  }

  forget(location: string): void {
    this.fds.delete(location);
  }

  clear(): void {
    this.fds.clear();
  }
}
