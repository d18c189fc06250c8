import { importMediaFromStream, type ImportDeps } from '../import/store-imported.js';
import { ArchiveFormatError } from './tar-reader.js';
import { EntryMismatchError, type ArchiveReader } from './read-archive.js';
import type { ManifestRecord } from './manifest.js';

// MMR's import rules over an archive that pass 1 found sound: existing mxc URIs are skipped,
// an entry whose uploader is on another server than its origin is refused (it would let one
// server's archive plant media under another's name), each file's bytes must hash as the
// manifest says, and quotas are not checked (an operator's act). Every refusal is an event
// and a count; only a broken archive stops the run.

export interface ImportCounts {
  imported: number;
  existing: number;
  refused: number;
  mismatched: number;
  missing: number;
}

export type ImportEvent =
  | { kind: 'refused'; mxc: string; reason: string }
  | { kind: 'mismatch'; mxc: string; detail: string }
  | { kind: 'missing'; mxc: string }
  | { kind: 'done'; mxc: string; outcome: 'imported' | 'exists' };

export interface ImportArchiveOptions {
  /** Server names whose media is local (configured homeservers), lower case. */
  localServers: ReadonlySet<string>;
  onEvent?(e: ImportEvent): void;
  signal?: AbortSignal;
}

/** Why MMR would refuse this record, or null. '' (no uploader: remote media) is allowed. */
export function uploaderProblem(r: ManifestRecord): string | null {
  if (r.uploader === '') return null;
  const m = /^@[^:]+:(.+)$/.exec(r.uploader);
  if (!m) return `uploader ${JSON.stringify(r.uploader)} is not a user ID`;
  if (m[1]!.toLowerCase() !== r.origin.toLowerCase())
    return `uploader ${JSON.stringify(r.uploader)} is not on the media's origin ${JSON.stringify(r.origin)}`;
  return null;
}

export async function importArchive(
  reader: ArchiveReader,
  deps: ImportDeps,
  opts: ImportArchiveOptions,
): Promise<ImportCounts> {
  const counts: ImportCounts = { imported: 0, existing: 0, refused: 0, mismatched: 0, missing: reader.missing.length };
  for (const mxc of reader.missing) opts.onEvent?.({ kind: 'missing', mxc });
  for await (const item of reader.items()) {
    if (opts.signal?.aborted) break;
    const r = item.record;
    const problem = uploaderProblem(r);
    if (problem) {
      counts.refused++;
      opts.onEvent?.({ kind: 'refused', mxc: item.mxc, reason: problem });
      continue;
    }
    const kind = opts.localServers.has(r.origin.toLowerCase()) ? 'local_media' : 'remote_media';
    try {
      const out = await importMediaFromStream(
        deps,
        {
          origin: r.origin,
          mediaId: r.media_id,
          uploadName: r.name === '' ? null : r.name,
          contentType: r.content_type === '' ? null : r.content_type,
          userId: r.uploader,
          creationTs: r.created_ts,
          quarantined: false,
          requiresAuth: false,
        },
        () => item.open(),
        { kind, expectSha256: r.sha256, expectSize: r.size_bytes },
      );
      if (out.outcome === 'mismatch') {
        counts.mismatched++;
        opts.onEvent?.({ kind: 'mismatch', mxc: item.mxc, detail: out.detail ?? 'bytes differ from the manifest' });
        continue;
      }
      if (out.outcome === 'exists') counts.existing++;
      else counts.imported++;
      opts.onEvent?.({ kind: 'done', mxc: item.mxc, outcome: out.outcome });
    } catch (e) {
      // The verifying stream failed: staging was dropped, nothing of this entry was stored.
      if (e instanceof EntryMismatchError) {
        counts.mismatched++;
        opts.onEvent?.({ kind: 'mismatch', mxc: item.mxc, detail: e.message });
        continue;
      }
      if (e instanceof ArchiveFormatError) throw e;
      throw new Error(`${item.mxc}: ${(e as Error).message}`);
    }
  }
  return counts;
}
