import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import {
  ManifestError,
  MANIFEST_NAME,
  INDEX_NAME,
  parseManifest,
  type Manifest,
  type ManifestRecord,
} from './manifest.js';
import { ArchiveFormatError, DEFAULT_TAR_LIMITS, readTarGz, type TarLimits } from './tar-reader.js';

// Reads an archive given as a set of parts, in whatever order they were named or arrived.
// Two passes, so that an import never holds file bytes and never starts on a broken archive:
//   1. scan: every part is decompressed and its tar structure checked end to end (headers,
//      caps, names, duplicates across parts, the gzip trailer); manifest.json is read from
//      whichever part holds it (the only entry ever held in memory, under its own cap).
//   2. items: the parts are read again and each entry the manifest lists is handed out with
//      a stream that checks its size and sha256 as it flows; a mismatch errors that stream
//      (before its end, so a consumer never commits bad bytes) and the next entry follows.

export interface ArchivePart {
  /** Shown in errors (the file name). */
  name: string;
  open(): Readable;
}

export interface ReadArchiveOptions {
  limits?: TarLimits;
  /** manifest.json is parsed in memory: its own cap (MMR's manifests are ~400 bytes a file). */
  maxManifestBytes?: number;
}

/** The bytes of an entry are not what the manifest says. */
export class EntryMismatchError extends Error {
  override name = 'EntryMismatchError';
}

export interface ArchiveItem {
  mxc: string;
  record: ManifestRecord;
  /** The entry's bytes, checked against record.size_bytes and record.sha256; once only. */
  open(): Readable;
}

export class ArchiveReader {
  private constructor(
    readonly parts: ArchivePart[],
    readonly manifest: Manifest,
    /** Manifest entries no part holds. */
    readonly missing: string[],
    /** Entries that are neither media of the manifest nor manifest.json / index.html. */
    readonly unlisted: string[],
    private readonly limits: TarLimits,
  ) {}

  /** Pass 1: checks every part and finds the manifest; throws one line on a broken archive. */
  static async open(parts: ArchivePart[], opts: ReadArchiveOptions = {}): Promise<ArchiveReader> {
    const limits = opts.limits ?? DEFAULT_TAR_LIMITS;
    const maxManifest = opts.maxManifestBytes ?? 256 * 2 ** 20;
    if (parts.length === 0) throw new ArchiveFormatError('no archive parts given');
    const where = new Map<string, string>();
    let manifestText: string | null = null;
    for (const part of parts) {
      for await (const e of readTarGz(part.open(), part.name, limits)) {
        const other = where.get(e.name);
        if (other !== undefined)
          throw new ArchiveFormatError(`${part.name}: entry ${JSON.stringify(e.name)} is also in ${other}`);
        where.set(e.name, part.name);
        if (e.name !== MANIFEST_NAME) continue; // not read: the tar reader skips its bytes
        if (e.size > maxManifest)
          throw new ArchiveFormatError(
            `${part.name}: manifest.json is ${e.size} bytes, over the ${maxManifest}-byte cap`,
          );
        const chunks: Buffer[] = [];
        for await (const c of e.stream as AsyncIterable<Buffer>) chunks.push(c);
        manifestText = Buffer.concat(chunks).toString('utf8');
      }
    }
    if (manifestText === null) throw new ArchiveFormatError(`no manifest.json in any of the ${parts.length} part(s)`);
    const manifest = parseManifest(manifestText);
    const listed = new Set<string>();
    const missing: string[] = [];
    for (const [mxc, r] of Object.entries(manifest.media)) {
      listed.add(r.file_name);
      if (!where.has(r.file_name)) missing.push(mxc);
    }
    const unlisted = [...where.keys()].filter((n) => n !== MANIFEST_NAME && n !== INDEX_NAME && !listed.has(n));
    return new ArchiveReader(parts, manifest, missing, unlisted, limits);
  }

  /** Pass 2: each listed entry, part by part, with a verifying stream. */
  async *items(): AsyncGenerator<ArchiveItem> {
    const byFile = new Map<string, string>();
    for (const [mxc, r] of Object.entries(this.manifest.media)) byFile.set(r.file_name, mxc);
    for (const part of this.parts) {
      for await (const e of readTarGz(part.open(), part.name, this.limits)) {
        const mxc = byFile.get(e.name);
        if (mxc === undefined) continue;
        const record = this.manifest.media[mxc]!;
        let opened = false;
        yield {
          mxc,
          record,
          open: () => {
            if (opened) throw new Error(`${mxc}: the entry's stream was already opened`);
            opened = true;
            const v = verifier(mxc, record);
            e.stream.on('error', (err) => v.destroy(err));
            return e.stream.pipe(v);
          },
        };
      }
    }
  }
}

/** Passes bytes through while counting and hashing; errors before the end on a mismatch. */
function verifier(mxc: string, r: ManifestRecord): Transform {
  const hash = createHash('sha256');
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > r.size_bytes) {
        cb(new EntryMismatchError(`${mxc}: ${r.file_name} has more than the ${r.size_bytes} bytes the manifest says`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (n !== r.size_bytes) {
        cb(new EntryMismatchError(`${mxc}: ${r.file_name} has ${n} bytes, the manifest says ${r.size_bytes}`));
        return;
      }
      const got = hash.digest('hex');
      if (got !== r.sha256) {
        cb(new EntryMismatchError(`${mxc}: ${r.file_name} hashes to ${got}, the manifest says ${r.sha256}`));
        return;
      }
      cb();
    },
  });
}

export { ManifestError };
