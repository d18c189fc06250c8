import type { Queryable } from './driver.js';
import { num } from './driver.js';

// The admin audit trail (migrations/0005_moderation.up.sql): every admin action, who, on what.

export interface AuditEntry {
  id: number;
  ts: number;
  actor: string;
  serverName: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
}

export async function insertAudit(q: Queryable, e: Omit<AuditEntry, 'id'>): Promise<number> {
  const r = await q.query<{ id: unknown }>(
    `INSERT INTO admin_audit (ts, actor, server_name, action, target, details)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [e.ts, e.actor, e.serverName, e.action, e.target, JSON.stringify(e.details)],
  );
  return num(r.rows[0]!.id);
}

/** Newest first, before `beforeId` (keyset paging); `serverName` narrows to one homeserver. */
export async function listAudit(
  q: Queryable,
  opts: { beforeId: number | null; limit: number; serverName: string | null },
): Promise<AuditEntry[]> {
  const r = await q.query<Record<string, unknown>>(
    `SELECT id, ts, actor, server_name, action, target, details FROM admin_audit
     WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR server_name = $2)
     ORDER BY id DESC LIMIT $3`,
    [opts.beforeId, opts.serverName, opts.limit],
  );
  return r.rows.map((x) => ({
    id: num(x.id),
    ts: num(x.ts),
    actor: x.actor as string,
    serverName: x.server_name as string,
    action: x.action as string,
    target: x.target as string,
    details: JSON.parse(x.details as string) as Record<string, unknown>,
  }));
}
