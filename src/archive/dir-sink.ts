import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { PartSink } from './part-writer.js';

// Parts as files in a directory (the CLI's --out). Each part is written to NAME.partial,
// flushed to disk and renamed when complete, so the directory never shows a part that looks
// whole but is not (a crash or Ctrl-C leaves only .partial files).

export class DirPartSink implements PartSink {
  constructor(private readonly dir: string) {}

  createPart(_index: number, fileName: string): Writable {
    return createWriteStream(join(this.dir, `${fileName}.partial`), { flags: 'wx', flush: true });
  }

  async finishPart(_index: number, fileName: string): Promise<void> {
    await rename(join(this.dir, `${fileName}.partial`), join(this.dir, fileName));
  }

  async abortPart(_index: number, fileName: string): Promise<void> {
    await rm(join(this.dir, `${fileName}.partial`), { force: true });
  }
}
