import type { Readable } from 'node:stream';
import type { Datastore } from '../datastores/datastore.js';
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
  /** No part holds it (and its s3_url, if any, could not be read: `detail`). */
  | { kind: 'missing'; mxc: string; detail?: string }
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
  const counts: ImportCounts = { imported: 0, existing: 0, refused: 0, mismatched: 0, missing: 0 };
  // One entry: MMR's rules, then the bytes through the hash check into a datastore.
  const importOne = async (mxc: string, r: ManifestRecord, open: () => Readable | Promise<Readable>) => {
    const problem = uploaderProblem(r);
    if (problem) {
      counts.refused++;
      opts.onEvent?.({ kind: 'refused', mxc, reason: problem });
      return;
    }
    const kind = opts.localServers.has(r.origin.toLowerCase()) ? 'local_media' : 'remote_media';
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
      open,
      { kind, expectSha256: r.sha256, expectSize: r.size_bytes },
    );
    if (out.outcome === 'mismatch') {
      counts.mismatched++;
      opts.onEvent?.({ kind: 'mismatch', mxc, detail: out.detail ?? 'bytes differ from the manifest' });
      return;
    }
    if (out.outcome === 'exists') counts.existing++;
    else counts.imported++;
    opts.onEvent?.({ kind: 'done', mxc, outcome: out.outcome });
  };

  for await (const item of reader.items()) {
    if (opts.signal?.aborted) return counts;
    try {
      await importOne(item.mxc, item.record, () => item.open());
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
  // Entries no part holds: read from the S3 object their s3_url names, when that is in a
  // configured datastore (MMR's rule; an export made with ?s3_urls may rely on it). The object
  // is read with the datastore's own credentials, never fetched from the URL, and must hash
  // as the manifest says, like a file in a part.
  for (const mxc of reader.missing) {
    if (opts.signal?.aborted) return counts;
    const r = reader.manifest.media[mxc]!;
    const found = r.s3_url === '' ? null : objectNamedBy(deps, r.s3_url);
    if (!found) {
      counts.missing++;
      opts.onEvent?.({
        kind: 'missing',
        mxc,
        ...(r.s3_url === '' ? {} : { detail: 'its s3_url names no configured S3 datastore' }),
      });
      continue;
    }
    try {
      await importOne(mxc, r, () => found.ds.openStream(found.location));
    } catch (e) {
      counts.missing++;
      opts.onEvent?.({ kind: 'missing', mxc, detail: `reading its s3_url: ${(e as Error).message}` });
    }
  }
  return counts;
}

/** The configured datastore and location an s3_url names, or null. */
function objectNamedBy(deps: ImportDeps, url: string): { ds: Datastore; location: string } | null {
  for (const ds of deps.datastores.all()) {
    const location = ds.locationOfObjectUrl?.(url) ?? null;
    if (location !== null) return { ds, location };
  }
  return null;
}
