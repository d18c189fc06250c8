import type { Db } from '../db/driver.js';
import type { DatastoreRegistry } from '../datastores/registry.js';

// Whether this instance should get traffic (GET /readyz): the database answers a query, and each
// enabled datastore answers a lookup and takes a write probe.

const CHECK_TIMEOUT_MS = 2000;
/** A key no blob can have (blob locations are hashes): a lookup that answers "no" is healthy. */
const PROBE_LOCATION = 'readyz-probe';

export interface ReadinessDeps {
  db: Db;
  datastores: DatastoreRegistry;
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function check(fn: () => Promise<unknown>): Promise<string> {
  try {
    await within(fn(), CHECK_TIMEOUT_MS);
    return 'ok';
  } catch (e) {
    return (e as Error).message || 'failed';
  }
}

/** Each check's outcome: 'ok' or why not. */
export async function readinessChecks(deps: ReadinessDeps): Promise<Record<string, string>> {
  const checks: Record<string, string> = { database: await check(() => deps.db.query('SELECT 1')) };
  for (const ds of deps.datastores.all()) {
    // Readable and writable: a store that can only be read fails every upload (a read-only
    // directory answered 200 here while each upload got 500).
    if (ds.enabled)
      checks[`datastore:${ds.id}`] = await check(async () => {
        await ds.exists(PROBE_LOCATION);
        await ds.probeWrite();
      });
  }
  return checks;
}
