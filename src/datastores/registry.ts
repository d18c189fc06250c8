import type { DatastoreConfig, DatastoreKind, S3DatastoreOpts } from '../config/schema.js';
import { defaultS3Opts } from '../config/defaults.js';
import type { Datastore } from './datastore.js';
import { servesKind } from './datastore.js';
import { FileDatastore } from './file.js';
import { S3Datastore } from './s3/store.js';
import type { UploadSinkPool } from '../pools/upload-sink.js';

// All configured datastores by ID, plus the stored-bytes tally that `pick` balances on.
// The tally is loaded once from the database and then updated on every commit, so picking
// costs no query (MMR queried sizes on every upload, then picked the wrong store anyway).
export class DatastoreRegistry {
  private readonly stores = new Map<string, Datastore>();
  private readonly bytes = new Map<string, number>();
  /** The config each store was built from: a reload rebuilds only the stores whose entry changed. */
  private readonly builtFrom = new Map<string, string>();

  /** `observe` wraps each store as it is built (byte metrics); the identity by default. */
  constructor(
    private readonly instanceTag: string,
    private readonly sinks: UploadSinkPool,
    private readonly observe: (ds: Datastore) => Datastore = (ds) => ds,
  ) {}

  /** Creates stores for configs not seen before; existing IDs keep their object (live reload). */
  async sync(configs: DatastoreConfig[]): Promise<void> {
    for (const c of configs) {
      const fingerprint = JSON.stringify(c);
      if (this.stores.has(c.id) && this.builtFrom.get(c.id) === fingerprint) continue;
      this.stores.set(c.id, this.observe(await create(c, this.instanceTag, this.sinks)));
      this.builtFrom.set(c.id, fingerprint);
    }
  }

  setTally(tally: Map<string, number>): void {
    for (const [id, n] of tally) this.bytes.set(id, n);
  }

  addBytes(id: string, n: number): void {
    this.bytes.set(id, (this.bytes.get(id) ?? 0) + n);
  }

  storedBytes(id: string): number {
    return this.bytes.get(id) ?? 0;
  }

  get(id: string): Datastore | undefined {
    return this.stores.get(id);
  }

  all(): Datastore[] {
    return [...this.stores.values()];
  }

  /** The eligible datastore (among `allowedIds`) holding the fewest bytes. */
  pick(kind: DatastoreKind, allowedIds: readonly string[]): Datastore | undefined {
    let best: Datastore | undefined;
    for (const id of allowedIds) {
      const ds = this.stores.get(id);
      if (!ds || !servesKind(ds, kind)) continue;
      if (!best || this.storedBytes(ds.id) < this.storedBytes(best.id)) best = ds;
    }
    return best;
  }
}

async function create(c: DatastoreConfig, instanceTag: string, sinks: UploadSinkPool): Promise<Datastore> {
  const ds =
    c.type === 'file'
      ? new FileDatastore(c.id, String(c.opts.path), c.forKinds, c.enabled, instanceTag, sinks)
      : // Validated opts already carry every default; entries built in code may leave some out.
        new S3Datastore(
          c.id,
          { ...defaultS3Opts(), ...c.opts } as S3DatastoreOpts,
          c.forKinds,
          c.enabled,
          instanceTag,
          sinks,
        );
  await ds.init();
  return ds;
}
