import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { BLOCK, MAX_OCTAL_SIZE, encodeHeader, encodePaxRecords, padding } from './tar-header.js';

// A streaming tar writer: each entry's header, then its bytes as the source yields them, into
// any Writable (a gzip stream here) with backpressure, so memory is a chunk or two whatever
// the entry's size. The size goes into the header before the bytes, so it must be known up
// front; a source that yields more or fewer bytes than declared is an error (the archive would
// be corrupt past that point), never silently padded.

const ZERO = Buffer.alloc(BLOCK);

/** The source failed before anything of its entry was written: the archive is still whole. */
export class EntrySourceError extends Error {
  override name = 'EntrySourceError';
}

export class TarWriter {
  /** Tar bytes written so far (headers, bodies, padding): what part sizes are measured in. */
  bytes = 0;
  private ended = false;

  constructor(private readonly out: Writable) {}

  private async put(buf: Buffer): Promise<void> {
    this.bytes += buf.length;
    if (!this.out.write(buf)) await once(this.out, 'drain');
  }

  /** Writes the header block(s) for `name`: a pax header first when ustar cannot hold it. */
  private async header(name: string, size: number, mtimeMs: number): Promise<void> {
    const pax: Record<string, string> = {};
    let field = name;
    let prefix: string | undefined;
    if (Buffer.byteLength(name) > 100) {
      const split = splitUstar(name);
      if (split) [prefix, field] = split;
      else {
        pax.path = name;
        field = truncateUtf8(name, 100);
      }
    }
    if (size > MAX_OCTAL_SIZE) pax.size = String(size);
    if (Object.keys(pax).length > 0) {
      const body = encodePaxRecords(pax);
      await this.put(
        encodeHeader({ name: truncateUtf8(`PaxHeaders/${field}`, 100), size: body.length, mtimeMs, typeflag: 'x' }),
      );
      await this.put(body);
      await this.put(ZERO.subarray(0, padding(body.length)));
    }
    await this.put(encodeHeader({ name: field, size, mtimeMs, typeflag: '0', prefix }));
  }

  /**
   * Appends one regular file of exactly `size` bytes read from `source`; returns the SHA-256
   * of what was written (the manifest records the bytes as archived, not as the row claims).
   */
  async addFile(name: string, size: number, mtimeMs: number, source: Readable): Promise<{ sha256: string }> {
    if (this.ended) throw new Error('tar writer already ended');
    const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    // The first chunk is read before the header is written: a missing or unreadable blob
    // fails here, where the archive is still intact and the caller may skip the item.
    let first: IteratorResult<Buffer>;
    try {
      first = await it.next();
    } catch (e) {
      source.destroy();
      throw new EntrySourceError(`${name}: ${(e as Error).message}`);
    }
    await this.header(name, size, mtimeMs);
    const hash = createHash('sha256');
    let got = 0;
    try {
      for (let r = first; !r.done; r = await it.next()) {
        const chunk = r.value;
        got += chunk.length;
        if (got > size) throw new Error(`${name}: source has more than the ${size} bytes declared`);
        hash.update(chunk);
        await this.put(chunk);
      }
    } finally {
      if (!source.destroyed) source.destroy();
    }
    if (got !== size) throw new Error(`${name}: source ended after ${got} of ${size} bytes`);
    await this.put(ZERO.subarray(0, padding(size)));
    return { sha256: hash.digest('hex') };
  }

  /** Abandons the archive: the output is destroyed with `err`. */
  destroy(err: Error): void {
    this.ended = true;
    this.out.destroy(err);
  }

  /** Writes the end-of-archive marker (two zero blocks) and ends the output. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.put(ZERO);
    await this.put(ZERO);
    this.out.end();
  }
}

/** ustar's own long-name form: prefix (≤155 bytes) "/" name (≤100 bytes), split at a slash. */
function splitUstar(name: string): [string, string] | null {
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(rest) > 100) return null;
    if (rest.length > 0 && Buffer.byteLength(prefix) <= 155) return [prefix, rest];
  }
  return null;
}

/** At most `max` bytes of UTF-8, never cutting a character in half. */
function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  let n = 0;
  for (const ch of s) {
    const len = Buffer.byteLength(ch);
    if (n + len > max) break;
    out += ch;
    n += len;
  }
  return out;
}
