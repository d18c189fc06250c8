import { json, type Result } from '../../http/types.js';
import { auditTrail } from '../../pipelines/admin/audit.js';
import { positiveIntParam } from '../params.js';
import type { Ctx } from '../services.js';
import { actorOf } from './actor.js';

// GET …/admin/audit?limit=&before_id=: the admin actions, newest first. A local admin sees its
// own homeserver's entries only.

export async function auditHandler(ctx: Ctx): Promise<Result> {
  const actor = await actorOf(ctx, { localAdmins: true, what: 'read the audit log' });
  const limit = Math.min(
    1000,
    positiveIntParam('limit', ctx.req.query.get('limit'), { required: false, fallback: 100 }),
  );
  const rawBefore = ctx.req.query.get('before_id');
  const beforeId = rawBefore ? positiveIntParam('before_id', rawBefore) : null;
  const entries = await auditTrail(ctx.svc.moderation, {
    beforeId,
    limit,
    serverName: actor.scopeOrigin,
  });
  const last = entries.length === limit ? entries[entries.length - 1]!.id : null;
  return json({
    entries: entries.map((e) => ({
      id: e.id,
      ts: e.ts,
      actor: e.actor,
      server_name: e.serverName,
      action: e.action,
      target: e.target,
      details: e.details,
    })),
    ...(last !== null ? { next_before_id: last } : {}),
  });
}
