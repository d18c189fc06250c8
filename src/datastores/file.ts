import { createReadStream, read, readSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { DatastoreKind } from '../config/schema.js';
import type { ByteRange, Datastore, StagingWriter } from './datastore.js';
import { stagingName, sweepStagingDir } from './staging-names.js';
import { FileStagingWriter } from './file-staging.js';
import { FdCache } from './fd-cache.js';
import { probeLocalFile } from './write-probe.js';
import { checkedLocation } from './location.js';
import type { UploadSinkPool } from '../pools/upload-sink.js';

const STAGING_DIR = '.staging';
/** Reads up to this size of recently read blobs happen inline (see readAt). */
const SYNC_READ_MAX_BYTES = 64 * 1024;

function checkedLength(buf: Buffer, n: number, location: string): Buffer {
  if (n !== buf.length) throw new Error(`blob ${location} is shorter than its row says (${n} < ${buf.length})`);
  return buf;
}

// Blobs live at <path>/ab/cd/<sha256>: content-addressed, so two identical uploads can only
// ever produce one file, and a blob committed just before a crash is reused, not duplicated.
export class FileDatastore implements Datastore {
  readonly type = 'file' as const;
  private readonly stagingDir: string;
  private readonly fds = new FdCache(256);

  constructor(
    readonly id: string,
    readonly root: string,
    readonly kinds: readonly DatastoreKind[],
    readonly enabled: boolean,
    /** Prefix of our staging files: the sweep at start-up removes all of ours at once. */
    private readonly instanceTag: string,
    private readonly sinks: UploadSinkPool,
  ) {
    this.stagingDir = join(root, STAGING_DIR);
  }

  async init(): Promise<void> {
    await mkdir(this.stagingDir, { recursive: true });
  }

  describe(): string {
    return `file:${this.root}`;
  }

  async createStaging(): Promise<StagingWriter> {
    return FileStagingWriter.create(this.stagingPath(), this.sinks);
  }

  private stagingPath(): string {
    return join(this.stagingDir, stagingName(this.instanceTag));
  }

  async putBlob(bytes: Buffer, sha256: string): Promise<string> {
    const path = this.stagingPath();
    const fh = await open(path, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(path, { force: true });
      throw e;
    }
    await fh.close();
    return this.place(path, sha256);
  }

  async commit(staging: StagingWriter, sha256: string): Promise<string> {
    if (!(staging instanceof FileStagingWriter)) throw new Error('staging object belongs to another datastore');
    return this.place(staging.path, sha256);
  }

  /** Renames a durable staging file to its content address and makes the rename durable. */
  private async place(stagingPath: string, sha256: string): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('commit: not a sha256 hex digest');
    const location = `${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;
    const target = this.pathOf(location);
    const first = await mkdir(dirname(target), { recursive: true });
    // Directories made just now are durable only once their parents' entries are flushed:
    // otherwise a crash could keep the file and lose the path to it. (Once per new prefix.)
    if (first) {
      for (let d = dirname(target); ; d = dirname(d)) {
        await syncDir(dirname(d));
        if (d === first) break;
      }
    }
    await rename(stagingPath, target);
    // The rename is only durable once the directory entry is flushed too.
    await syncDir(dirname(target));
    return location;
  }

  async exists(location: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(location))).isFile();
    } catch {
      return false;
    }
  }

  /** One pread on a cached descriptor: the small-download path does no open/stat/close. */
  readAll(location: string, size?: number): Promise<Buffer> {
    if (size === undefined) return readFile(this.pathOf(location));
    return this.readAt(location, 0, size);
  }

  readAt(location: string, position: number, size: number, into?: Buffer): Promise<Buffer> {
    const buf = into ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    const hot = this.fds.peek(location);
    if (hot !== undefined && size <= SYNC_READ_MAX_BYTES) {
      // A blob read moments ago is in the page cache: an inline pread costs about 2 µs, less
      // than a thread-pool round trip (measured: 34k vs 26k req/s at 1 KiB). Cold blobs and
      // large reads stay off the event loop.
      try {
        return Promise.resolve(checkedLength(buf, readSync(hot, buf, 0, size, position), location));
      } catch (e) {
        this.fds.forget(location);
        return Promise.reject(e);
      }
    }
    return this.fds
      .acquire(location, () => this.pathOf(location))
      .then(
        ({ fd, release }) =>
          new Promise((resolve, reject) => {
            read(fd, buf, 0, size, position, (err, n) => {
              release();
              if (err) {
                this.fds.forget(location);
                return reject(err);
              }
              try {
                resolve(checkedLength(buf, n, location));
              } catch (e) {
                reject(e);
              }
            });
          }),
      );
  }

  openStream(location: string, range?: ByteRange): Readable {
    return createReadStream(this.pathOf(location), {
      start: range?.start,
      end: range?.end,
      highWaterMark: 256 * 1024,
    });
  }

  async delete(location: string): Promise<void> {
    this.fds.forget(location);
    await rm(this.pathOf(location), { force: true });
  }

  /** Walks the tree below the root (the staging directory excluded); locations use `/`. */
  async *listObjects(): AsyncIterable<string> {
    const walk = async function* (dir: string, prefix: string): AsyncGenerator<string> {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (prefix === '' && e.name === STAGING_DIR) continue;
        if (e.isDirectory()) yield* walk(join(dir, e.name), `${prefix}${e.name}/`);
        else yield `${prefix}${e.name}`;
      }
    };
    yield* walk(this.root, '');
  }

  sweepStaging(): Promise<number> {
    return sweepStagingDir(this.stagingDir, this.instanceTag);
  }

  /** The file's mtime: a commit's rename keeps the time its staging file was last written. */
  async modifiedAt(location: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(location))).mtimeMs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** A staging file created, written and removed, as an upload's first step needs (cheap: no fsync). */
  probeWrite(): Promise<void> {
    // A staging name of ours: a probe cut short by a crash is swept at the next start.
    return probeLocalFile(this.stagingPath());
  }

  pathOf(location: string): string {
    return join(this.root, checkedLocation(location));
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
