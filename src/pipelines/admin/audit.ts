import type { Queryable } from '../../db/driver.js';
import { insertAudit, listAudit, type AuditEntry } from '../../db/audit.js';
import type { Logger } from '../../logging/logger.js';
import type { Db } from '../../db/driver.js';

// Every admin action leaves a row (actor, action, target, counts, time) and a log line: the
// record an operator shows when asked who took what down, and when.

export type { AuditEntry };

export interface AdminAction {
  /** The user ID that asked (`@sharedsecret` for the shared secret). */
  actor: string;
  /** The homeserver the request came in for. */
  serverName: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
}

export async function recordAction(q: Queryable, log: Logger, a: AdminAction): Promise<void> {
  await insertAudit(q, { ts: Date.now(), ...a });
  log.info('admin action', {
    actor: a.actor,
    serverName: a.serverName,
    action: a.action,
    target: a.target,
    ...a.details,
  });
}

export function auditTrail(
  deps: { db: Db },
  opts: { beforeId: number | null; limit: number; serverName: string | null },
): Promise<AuditEntry[]> {
  return listAudit(deps.db, opts);
}
