import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { INDEX_TAIL, indexHead, indexRow } from './index-html.js';
import { INDEX_NAME, MANIFEST_NAME, MANIFEST_TAIL, manifestEntry, manifestHead, manifestRecord } from './manifest.js';
import { archivedName } from './names.js';
import { MANIFEST_PART_NAME, PartSplitter, type PartInfo, type PartSink, type TarSource } from './part-writer.js';
import { EntrySourceError } from './tar-writer.js';

// An export in MMR's archive v2 layout: the media, in order, over export-part-N.tgz; then a
// last part, export-manifest.tgz, holding manifest.json and index.html (as MMR writes them).
// Memory stays constant whatever the export's size: bytes are streamed entry by entry, and the
// manifest's records and the index's rows are spooled to a temporary directory as each item
// is written, then streamed into the last part (a tar header needs their sizes first).

export interface ExportItem {
  origin: string;
  mediaId: string;
  uploadName: string | null;
  contentType: string | null;
  sizeBytes: number;
  creationTs: number;
  /** '' when unknown (remote media). */
  uploader: string;
  s3Url: string | null;
  /** The hash the row records; a different hash of the bytes read is reported, not fatal. */
  sha256: string;
  open(): Readable | Promise<Readable>;
}

export type ExportEvent =
  | { kind: 'written'; mxc: string; part: number; sizeBytes: number }
  | { kind: 'skipped'; mxc: string; reason: string }
  | { kind: 'hash-differs'; mxc: string; recorded: string; actual: string };

export interface ExportOptions {
  entityId: string;
  targetBytesPerPart: number;
  sink: PartSink;
  /** Where the spools go; the system temp directory by default. */
  tmpDir?: string;
  now?: () => number;
  onEvent?(e: ExportEvent): void;
}

export interface ExportResult {
  parts: PartInfo[];
  media: number;
  skipped: number;
  bytes: number;
}

class Spool {
  private readonly out: WriteStream;
  bytes = 0;
  constructor(readonly path: string) {
    this.out = createWriteStream(path);
  }
  async write(s: string): Promise<void> {
    const b = Buffer.from(s, 'utf8');
    this.bytes += b.length;
    if (!this.out.write(b)) await once(this.out, 'drain');
  }
  private closed: Promise<void> | null = null;
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.out.end();
      if (!this.out.closed) await once(this.out, 'close');
    })();
    return this.closed;
  }
}

/** head + the spool's bytes + tail as one entry. */
function spooled(name: string, head: string, spool: Spool, tail: string, mtimeMs: number): TarSource {
  const h = Buffer.from(head, 'utf8');
  const t = Buffer.from(tail, 'utf8');
  return {
    name,
    size: h.length + spool.bytes + t.length,
    mtimeMs,
    open: () =>
      Readable.from(
        (async function* () {
          yield h;
          yield* createReadStream(spool.path) as AsyncIterable<Buffer>;
          yield t;
        })(),
      ),
  };
}

export async function writeExport(items: AsyncIterable<ExportItem>, opts: ExportOptions): Promise<ExportResult> {
  const now = opts.now ?? Date.now;
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'media-repo-export-'));
  const splitter = new PartSplitter(opts.sink, opts.targetBytesPerPart);
  const records = new Spool(join(dir, 'manifest-records'));
  const rows = new Spool(join(dir, 'index-rows'));
  const result: ExportResult = { parts: [], media: 0, skipped: 0, bytes: 0 };
  try {
    for await (const item of items) {
      const mxc = `mxc://${item.origin}/${item.mediaId}`;
      const fileName = archivedName(item.origin, item.mediaId, item.contentType);
      let written: { sha256: string; part: number };
      try {
        written = await splitter.add({
          name: fileName,
          size: item.sizeBytes,
          mtimeMs: item.creationTs,
          open: item.open,
        });
      } catch (e) {
        // Failed before its header: the part is intact, the item is a report line.
        if (!(e instanceof EntrySourceError)) throw e;
        result.skipped++;
        opts.onEvent?.({ kind: 'skipped', mxc, reason: (e as Error).message });
        continue;
      }
      if (written.sha256 !== item.sha256)
        opts.onEvent?.({ kind: 'hash-differs', mxc, recorded: item.sha256, actual: written.sha256 });
      const rec = manifestRecord({ ...item, fileName, sha256: written.sha256 });
      await records.write(`${result.media > 0 ? ',' : ''}${manifestEntry(rec)}`);
      await rows.write(indexRow({ ...item, fileName }));
      result.media++;
      result.bytes += item.sizeBytes;
      opts.onEvent?.({ kind: 'written', mxc, part: written.part, sizeBytes: item.sizeBytes });
    }
    await records.close();
    await rows.close();
    const t = now();
    result.parts = await splitter.finishWithPart(MANIFEST_PART_NAME, [
      spooled(MANIFEST_NAME, manifestHead(opts.entityId, t), records, MANIFEST_TAIL, t),
      spooled(INDEX_NAME, indexHead(opts.entityId), rows, INDEX_TAIL, t),
    ]);
    return result;
  } catch (e) {
    await splitter.abort(e as Error);
    throw e;
  } finally {
    await records.close().catch(() => undefined);
    await rows.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
