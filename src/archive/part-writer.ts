import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { EntrySourceError, TarWriter } from './tar-writer.js';

// Splits a run of entries over gzip tar parts: a new part starts once the current one holds
// targetBytesPerPart of tar bytes (checked after each entry, as MMR does, so a part may pass
// the target by one entry and an entry is never split). Where the bytes go is the sink's
// business (a directory for the CLI, the archives datastore for the server's task).

export interface PartSink {
  /** Where part `index` (from 1) is written; `fileName` as MMR names it. */
  createPart(index: number, fileName: string): Writable | Promise<Writable>;
  /** The part's stream has finished; `sizeBytes` is its compressed size. */
  finishPart(index: number, fileName: string, sizeBytes: number): Promise<void>;
  /** The export failed while this part was open: drop what was written of it. */
  abortPart?(index: number, fileName: string): Promise<void>;
}

export interface TarSource {
  name: string;
  size: number;
  mtimeMs: number;
  open(): Readable | Promise<Readable>;
}

export interface PartInfo {
  index: number;
  fileName: string;
  sizeBytes: number;
}

export const partFileName = (index: number): string => `export-part-${index}.tgz`;
/** MMR writes manifest.json and index.html into a last part of their own under this name. */
export const MANIFEST_PART_NAME = 'export-manifest.tgz';

interface OpenPart {
  index: number;
  fileName: string;
  tar: TarWriter;
  done: Promise<void>;
  compressed: { n: number };
}

export class PartSplitter {
  private current: OpenPart | null = null;
  private nextIndex = 1;
  readonly parts: PartInfo[] = [];

  constructor(
    private readonly sink: PartSink,
    private readonly targetBytesPerPart: number,
  ) {}

  private async open(fileName: string): Promise<OpenPart> {
    const index = this.nextIndex++;
    const dest = await this.sink.createPart(index, fileName);
    const gzip = createGzip();
    const compressed = { n: 0 };
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        compressed.n += chunk.length;
        cb(null, chunk);
      },
    });
    const done = pipeline(gzip, counter, dest);
    // A failing sink must not become an unhandled rejection while entries are being written;
    // close() awaits `done` and rethrows.
    done.catch(() => undefined);
    return { index, fileName, tar: new TarWriter(gzip), done, compressed };
  }

  private async close(p: OpenPart): Promise<PartInfo> {
    await p.tar.end();
    await p.done;
    await this.sink.finishPart(p.index, p.fileName, p.compressed.n);
    const info = { index: p.index, fileName: p.fileName, sizeBytes: p.compressed.n };
    this.parts.push(info);
    return info;
  }

  /** Appends one entry to the current part (opening one when needed); returns its SHA-256. */
  async add(
    entry: TarSource,
    namePart: (index: number) => string = partFileName,
  ): Promise<{ sha256: string; part: number }> {
    if (!this.current) this.current = await this.open(namePart(this.nextIndex));
    const p = this.current;
    let source: Readable;
    try {
      source = await entry.open();
    } catch (e) {
      throw new EntrySourceError(`${entry.name}: ${(e as Error).message}`);
    }
    const { sha256 } = await p.tar.addFile(entry.name, entry.size, entry.mtimeMs, source);
    if (p.tar.bytes >= this.targetBytesPerPart) {
      this.current = null;
      await this.close(p);
    }
    return { sha256, part: p.index };
  }

  /** Closes the part being written, if any. */
  async flush(): Promise<void> {
    const p = this.current;
    this.current = null;
    if (p) await this.close(p);
  }

  /** Writes `entries` into one last part of their own (MMR's manifest part) and finishes. */
  async finishWithPart(fileName: string, entries: TarSource[]): Promise<PartInfo[]> {
    await this.flush();
    const p = await this.open(fileName);
    for (const e of entries) await p.tar.addFile(e.name, e.size, e.mtimeMs, await e.open());
    await this.close(p);
    return this.parts;
  }

  /** Abandons the part in progress after an error (its stream is destroyed, the sink cleans up). */
  async abort(err: Error): Promise<void> {
    const p = this.current;
    this.current = null;
    if (!p) return;
    p.tar.destroy(err);
    await p.done.catch(() => undefined);
    await this.sink.abortPart?.(p.index, p.fileName);
  }
}
