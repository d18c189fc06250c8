import type { Writable } from 'node:stream';
import type { Db } from '../db/driver.js';
import { insertExportPart } from '../db/exports.js';
import { blobReferenced } from '../db/blobs.js';
import type { Datastore, StagingWriter } from '../datastores/datastore.js';
import type { PartSink } from './part-writer.js';
import { commitPart, stagingWritable } from './stored-parts.js';

// Parts of a server-side export, written into the archives datastore: each part goes to a
// staging object, is committed under its SHA-256 when complete, and gets its export_parts row
// in the same transaction, so a part is listed only once its object is whole. A part of an
// export deleted meanwhile is refused (and its object dropped unless something shares it).

export class ExportDeletedError extends Error {
  override name = 'ExportDeletedError';
}

export class DatastorePartSink implements PartSink {
  private readonly open = new Map<number, StagingWriter>();

  constructor(
    private readonly db: Db,
    private readonly ds: Datastore,
    private readonly exportId: string,
    private readonly onPart?: (index: number, sizeBytes: number) => Promise<void>,
  ) {}

  async createPart(index: number): Promise<Writable> {
    const staging = await this.ds.createStaging();
    this.open.set(index, staging);
    return stagingWritable(staging);
  }

  async finishPart(index: number, fileName: string, sizeBytes: number): Promise<void> {
    const staging = this.open.get(index)!;
    this.open.delete(index);
    try {
      await commitPart(this.db, this.ds, staging, async (q, obj) => {
        if (obj.size !== sizeBytes) throw new Error(`part ${index}: staged ${obj.size} bytes of ${sizeBytes}`);
        const part = {
          index,
          fileName,
          sizeBytes,
          sha256: obj.sha256,
          datastoreId: this.ds.id,
          location: obj.location,
        };
        if (await insertExportPart(q, this.exportId, part)) return;
        if (!(await blobReferenced(q, this.ds.id, obj.location))) await this.ds.delete(obj.location);
        throw new ExportDeletedError(`export ${this.exportId.slice(0, 8)}… was deleted while it was being written`);
      });
    } catch (e) {
      await staging.abort().catch(() => undefined);
      throw e;
    }
    await this.onPart?.(index, sizeBytes);
  }

  async abortPart(index: number): Promise<void> {
    const staging = this.open.get(index);
    this.open.delete(index);
    await staging?.abort().catch(() => undefined);
  }
}
