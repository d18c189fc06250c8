import { json, type Result } from '../http/types.js';
import type { Ctx } from './services.js';

// GET /readyz: whether this instance should get traffic. Unlike /healthz (alive, no I/O) it
// asks the database for a row and each enabled datastore for an object and for a write probe,
// and answers 503 while either fails or while the server is shutting down, so a load balancer stops sending work
// before the listener closes.

const CHECK_TIMEOUT_MS = 2000;
/** A key no blob can have (blob locations are hashes): a lookup that answers "no" is healthy. */
const PROBE_LOCATION = 'readyz-probe';

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

export async function readyHandler(ctx: Ctx): Promise<Result> {
  const svc = ctx.svc;
  const headers = { 'Cache-Control': 'no-store' };
  if (svc.state.shuttingDown) return json({ ready: false, status: 'shutting down' }, 503, headers);
  const checks: Record<string, string> = { database: await check(() => svc.db.query('SELECT 1')) };
  for (const ds of svc.datastores.all()) {
    // Readable and writable: a store that can only be read fails every upload (a read-only
    // directory answered 200 here while each upload got 500).
    if (ds.enabled) checks[`datastore:${ds.id}`] = await check(async () => {
      await ds.exists(PROBE_LOCATION);
      await ds.probeWrite();
    });
  }
  const ready = Object.values(checks).every((v) => v === 'ok');
  if (!ready) ctx.log.warn('not ready', checks);
  return json({ ready, checks }, ready ? 200 : 503, headers);
}
