import { defaultConfig } from '../config/defaults.js';

// Bounds on every wait for the database (database.timeouts). A database that stops answering
// (a black-holed connection: no refusal, no reset, nothing) must turn into a prompt 503, not a
// request that hangs for ever holding its staging object and a pooled connection.

export interface DatabaseTimeouts {
  /** Waiting for a pooled connection, or opening a new one. */
  connectSeconds: number;
  /** One statement (outside or inside a transaction). */
  querySeconds: number;
  /** A whole transaction, from BEGIN to COMMIT. */
  transactionSeconds: number;
}

/** For callers without a config (tools, tests): the config defaults. */
export const DEFAULT_DATABASE_TIMEOUTS: DatabaseTimeouts = defaultConfig().database.timeouts;

export type DatabaseWait = 'connect' | 'query' | 'transaction';

/**
 * Settles as `p` does, or rejects with `onTimeout()` once `ms` have passed. `onTimeout` runs
 * at most once, before the rejection, so the caller can first tear down what was waiting.
 */
export function within<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Warns about database timeouts at most once per interval, with how many were not logged. */
export function timeoutReporter(
  warn: (msg: string, fields: Record<string, unknown>) => void,
  intervalMs = 10_000,
): (what: DatabaseWait, seconds: number) => void {
  let last = 0;
  let suppressed = 0;
  return (what, seconds) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    warn('the database did not answer in time; the request gets 503', {
      wait: what,
      boundSeconds: seconds,
      alsoSinceLastLine: suppressed,
    });
    last = now;
    suppressed = 0;
  };
}
