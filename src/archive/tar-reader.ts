import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ByteSource } from './byte-source.js';
import { BLOCK, decodeHeader, decodePaxRecords, isZeroBlock, padding, type RawHeader } from './tar-header.js';
import { checkEntryName } from './entry-name.js';

// Reads a gzip tar one entry at a time and hands out each entry's bytes as a stream; nothing
// is written anywhere and no path is ever built from an entry's name (the caller decides where
// bytes go). Everything a hostile archive could use is refused before its bytes are read, with
// one line naming the part and the entry: bad checksums, links and devices, names that escape
// or hide a NUL, duplicates, sizes over the caps (a header declaring 100 GiB costs nothing),
// and a stream that ends early or does not decompress.

export interface TarLimits {
  /** Largest declared size of one entry. */
  maxEntryBytes: number;
  /** Largest sum of declared sizes in one archive (a tar bomb of many merely large entries). */
  maxTotalBytes: number;
  maxEntries: number;
  /** Largest pax or GNU long-name body (read into memory). */
  maxMetaBytes: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = {
  maxEntryBytes: 64 * 2 ** 30,
  maxTotalBytes: 1024 * 2 ** 30,
  maxEntries: 10_000_000,
  maxMetaBytes: 1 << 20,
};

/** A bad archive: the message is one line naming the part and, where known, the entry. */
export class ArchiveFormatError extends Error {
  override name = 'ArchiveFormatError';
}

export interface TarEntry {
  name: string;
  size: number;
  mtimeMs: number;
  /** The entry's bytes; read it (or not) before asking for the next entry. */
  stream: Readable;
}

/** Trailing bytes tolerated after the end-of-archive marker (GNU tar pads to 10 KiB records). */
const MAX_TRAILER = 64 * 1024;

/** Hands out one entry's bytes from the shared source; detach() ends its claim on the source. */
class EntryStream extends Readable {
  private pending: Promise<void> | null = null;
  private detached = false;
  constructor(
    private readonly src: ByteSource,
    public remaining: number,
    private readonly short: (got: number) => Error,
    private readonly declared: number,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }
  override _read(size: number): void {
    if (this.pending || this.detached) return;
    if (this.remaining === 0) {
      this.push(null);
      return;
    }
    this.pending = this.src.some(Math.min(this.remaining, Math.max(size, 16 * 1024))).then(
      (chunk) => {
        this.pending = null;
        if (this.detached) return;
        if (!chunk) {
          this.destroy(this.short(this.declared - this.remaining));
          return;
        }
        this.remaining -= chunk.length;
        this.push(chunk);
        if (this.remaining === 0) this.push(null);
      },
      (e: Error) => {
        this.pending = null;
        if (!this.detached) this.destroy(e);
      },
    );
  }
  /** Waits for a read in flight, then stops handing out bytes; returns what is left unread. */
  async detach(): Promise<number> {
    try {
      await this.pending;
    } catch {
      // already delivered to the stream's consumer; the reader will meet it again
    }
    this.detached = true;
    if (this.remaining > 0 && !this.destroyed) this.destroy();
    return this.remaining;
  }
}

/**
 * Entries of the gzip tar `input`, one at a time. `label` (the part's file name) starts every
 * error message. Directory entries are checked and skipped; only regular files are yielded.
 */
export async function* readTarGz(
  input: Readable,
  label: string,
  limits: TarLimits = DEFAULT_TAR_LIMITS,
): AsyncGenerator<TarEntry> {
  const gunzip = createGunzip();
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  let where = 'before the first entry';
  const fail = (msg: string) => new ArchiveFormatError(`${label}: ${msg}`);
  const src = new ByteSource(gunzip, (e) => {
    if (e instanceof ArchiveFormatError) return e;
    const zmsg =
      (e as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' ? 'truncated gzip stream' : `corrupt gzip (${e.message})`;
    return fail(`${zmsg} ${where}`);
  });
  const seen = new Set<string>();
  let total = 0;
  let count = 0;
  try {
    let pax: Map<string, string> | null = null;
    let longName: string | null = null;
    for (;;) {
      const block = await src.exact(BLOCK, () => fail(`truncated tar (a header ends early) ${where}`));
      if (!block) throw fail(`truncated tar (no end-of-archive marker) ${where}`);
      if (isZeroBlock(block)) {
        if (pax || longName) throw fail(`extended header with no entry ${where}`);
        await drainTrailer(src, fail);
        return;
      }
      let h: RawHeader;
      try {
        h = decodeHeader(block);
      } catch (e) {
        throw fail(`${(e as Error).message} ${where}`);
      }
      const headerName = h.prefix ? `${h.prefix}/${h.name}` : h.name;
      if (h.type === 'pax' || h.type === 'pax-global' || h.type === 'gnu-longname' || h.type === 'gnu-longlink') {
        if (h.size > limits.maxMetaBytes)
          throw fail(
            `entry ${JSON.stringify(headerName)}: ${h.type} header of ${h.size} bytes is over the ${limits.maxMetaBytes}-byte cap`,
          );
        const short = () => fail(`truncated tar in ${h.type} header ${JSON.stringify(headerName)}`);
        const body = (await src.exact(h.size, short)) ?? Buffer.alloc(0);
        if (body.length < h.size) throw short();
        await src.skip(padding(h.size), short);
        if (h.type === 'pax') {
          try {
            pax = decodePaxRecords(body);
          } catch (e) {
            throw fail(`entry ${JSON.stringify(headerName)}: ${(e as Error).message}`);
          }
        } else if (h.type === 'gnu-longname') {
          longName = body.toString('utf8').replace(/\0+$/, '');
        } else if (h.type === 'gnu-longlink') {
          throw fail(`entry ${JSON.stringify(headerName)}: link entries are not allowed`);
        }
        continue;
      }
      const rawName = pax?.get('path') ?? longName ?? headerName;
      let size = h.size;
      const paxSize = pax?.get('size');
      if (paxSize !== undefined) {
        if (!/^[0-9]{1,20}$/.test(paxSize))
          throw fail(`entry ${JSON.stringify(rawName)}: bad pax size ${JSON.stringify(paxSize)}`);
        size = Number(paxSize);
      }
      pax = null;
      longName = null;
      const quoted = JSON.stringify(rawName);
      where = `in entry ${quoted}`;
      if (h.type !== 'file' && h.type !== 'dir') {
        const kind = h.type === 'other' ? `unknown type ${JSON.stringify(h.typeflag)}` : `a ${h.type}`;
        throw fail(
          `entry ${quoted} is ${kind}${h.linkname ? ` to ${JSON.stringify(h.linkname)}` : ''}; only regular files are allowed`,
        );
      }
      // `tar -C dir .` starts with a "./" entry: the archive's own root, harmless.
      if (h.type === 'dir' && /^\.(\/\.)*\/?$/.test(rawName) && !h.nameHasNul) continue;
      const nameProblem = h.nameHasNul ? 'name contains NUL' : checkEntryName(rawName);
      if (nameProblem) throw fail(`entry ${quoted}: ${nameProblem}`);
      const name = rawName.replace(/^(\.\/)+/, '').replace(/\/$/, '');
      if (h.type === 'dir') {
        if (size !== 0) throw fail(`entry ${quoted}: directory with a size`);
        continue;
      }
      if (size > limits.maxEntryBytes)
        throw fail(`entry ${quoted} declares ${size} bytes, over the ${limits.maxEntryBytes}-byte cap per entry`);
      total += size;
      if (total > limits.maxTotalBytes)
        throw fail(`entry ${quoted} brings the archive to ${total} bytes, over the ${limits.maxTotalBytes}-byte cap`);
      if (++count > limits.maxEntries) throw fail(`entry ${quoted} is over the cap of ${limits.maxEntries} entries`);
      if (seen.has(name)) throw fail(`duplicate entry ${quoted}`);
      seen.add(name);
      const short = (got: number) => fail(`truncated tar: entry ${quoted} ends after ${got} of ${size} bytes`);
      const stream = new EntryStream(src, size, short, size);
      yield { name, size, mtimeMs: h.mtime * 1000, stream };
      const left = await stream.detach();
      await src.skip(left, (got) => short(size - left + got));
      await src.skip(padding(size), () => short(size));
      where = `after entry ${quoted}`;
    }
  } finally {
    await src.close().catch(() => undefined);
    gunzip.destroy();
    input.destroy();
  }
}

/** After the end marker: only zeros, and not many of them; the gzip trailer gets checked. */
async function drainTrailer(src: ByteSource, fail: (m: string) => Error): Promise<void> {
  let n = 0;
  for (;;) {
    const c = await src.some(MAX_TRAILER);
    if (!c) return;
    n += c.length;
    if (n > MAX_TRAILER || c.some((b) => b !== 0)) throw fail('data after the end-of-archive marker');
  }
}
