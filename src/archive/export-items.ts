import type { Queryable } from '../db/driver.js';
import { exportRows, type ExportEntity } from '../db/archive-export.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { ExportItem } from './export-archive.js';

// The media of an export as the archive writer takes it, for the CLI and the background task
// alike: each row with where its bytes are read from and, when asked for (MMR's
// `?s3_urls=true`), the object's S3 address as the manifest's `s3_url` (MMR's form,
// endpoint/bucket/key, so that MMR and media-repo read each other's manifests).

export async function* exportItems(
  db: Queryable,
  datastores: DatastoreRegistry,
  entity: ExportEntity,
  opts: { s3Urls: boolean; signal: AbortSignal },
): AsyncGenerator<ExportItem> {
  for await (const row of exportRows(db, entity)) {
    opts.signal.throwIfAborted();
    const ds = datastores.get(row.datastoreId);
    yield {
      ...row,
      uploader: row.userId,
      s3Url: opts.s3Urls ? (ds?.objectUrl?.(row.location) ?? null) : null,
      open: () => {
        if (!ds) throw new Error(`datastore '${row.datastoreId}' is not configured`);
        return ds.openStream(row.location);
      },
    };
  }
}
