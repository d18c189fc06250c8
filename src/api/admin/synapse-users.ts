import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import { usersStats } from '../../pipelines/admin-info.js';
import {
  deleteUserMedia,
  userMedia,
  type UserMediaOrder,
  type UserMediaQuery,
} from '../../pipelines/admin/synapse-media.js';
import type { Ctx } from '../services.js';
import { assertServerInScope, userIdParam } from './actor.js';
import { drainBody } from './json-body.js';
import { deletedAnswer, synapseActor } from './synapse.js';
import { parseUserStatsQuery } from './usage.js';

// Synapse's users' media endpoints: GET/DELETE /_synapse/admin/v1/users/{userId}/media and
// GET statistics/users/media, in Synapse's shapes and with its paging (offset `from`, a
// `next_token` while rows follow). Synapse's default page is 100 rows; ours stops at the caps
// below (a listing's next_token still reaches every row).

/** Rows in one listing page. */
const LIST_MAX = 1000;
/** Media deleted by one DELETE (Synapse has no next_token there: a cap is where it stops). */
const DELETE_MAX = 10_000;
const DEFAULT_LIMIT = 100;

const ORDERS: readonly UserMediaOrder[] = [
  'media_id',
  'upload_name',
  'created_ts',
  'last_access_ts',
  'media_length',
  'media_type',
  'quarantined_by',
  'safe_from_quarantine',
];

const quote = (v: string) => `'${v.length > 64 ? v.slice(0, 64) + '…' : v}'`;

function countParam(name: string, v: string | null, min: 0 | 1, fallback: number): number {
  if (v === null || v === '') return fallback;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min) {
    throw Errors.invalidParam(
      `${name}: expected a ${min === 1 ? 'positive' : 'non-negative'} integer, got ${quote(v)}`,
    );
  }
  return Number(v);
}

// With neither order_by nor dir, Synapse lists the newest first; an order_by alone is ascending.
function userMediaQuery(ctx: Ctx, origin: string, userId: string, max: number): UserMediaQuery {
  const q = ctx.req.query;
  const orderRaw = q.get('order_by');
  const orderBy = (orderRaw ?? 'created_ts') as UserMediaOrder;
  if (!ORDERS.includes(orderBy)) {
    throw Errors.invalidParam(`order_by: expected one of ${ORDERS.map(quote).join(', ')}, got ${quote(orderBy)}`);
  }
  const dir = q.get('dir') ?? (orderRaw === null ? 'b' : 'f');
  if (dir !== 'f' && dir !== 'b') throw Errors.invalidParam(`dir: expected 'f' or 'b', got ${quote(dir)}`);
  return {
    origin,
    userId,
    orderBy,
    ascending: dir === 'f',
    from: countParam('from', q.get('from'), 0, 0),
    limit: Math.min(countParam('limit', q.get('limit'), 1, DEFAULT_LIMIT), max),
  };
}

async function userTarget(ctx: Ctx) {
  const actor = await synapseActor(ctx);
  const { userId, server } = userIdParam(ctx.params.userId);
  assertServerInScope(actor, server);
  return { actor, userId, server };
}

export async function synapseUserMediaHandler(ctx: Ctx): Promise<Result> {
  const { userId, server } = await userTarget(ctx);
  const query = userMediaQuery(ctx, server, userId, LIST_MAX);
  const { rows, total } = await userMedia(ctx.svc.moderation, { ...query, host: ctx.serverName });
  return json({
    media: rows.map((m) => ({
      created_ts: m.creationTs,
      // No access times are kept: the creation time (see synapseMediaInfoHandler).
      last_access_ts: m.creationTs,
      media_id: m.mediaId,
      media_length: m.sizeBytes,
      media_type: m.contentType ?? 'application/octet-stream',
      quarantined_by: m.quarantinedBy,
      safe_from_quarantine: m.pinned,
      upload_name: m.uploadName,
    })),
    ...(query.from + rows.length < total ? { next_token: query.from + rows.length } : {}),
    total,
  });
}

export async function synapseDeleteUserMediaHandler(ctx: Ctx): Promise<Result> {
  await drainBody(ctx);
  const { actor, userId, server } = await userTarget(ctx);
  const query = userMediaQuery(ctx, server, userId, DELETE_MAX);
  return deletedAnswer(await deleteUserMedia(ctx.svc.moderation, actor, { ...query, host: ctx.serverName }));
}

/** statistics/users/media: the Host's uploaders (the query MMR's usage/{server}/users-stats runs). */
export async function synapseUserStatsHandler(ctx: Ctx): Promise<Result> {
  await synapseActor(ctx);
  const parsed = parseUserStatsQuery(ctx, ctx.serverName);
  // MMR's users-stats stops at 50 rows; Synapse's default page is 100.
  const query = {
    ...parsed,
    limit: Math.min(countParam('limit', ctx.req.query.get('limit'), 1, DEFAULT_LIMIT), LIST_MAX),
  };
  const { rows, total } = await usersStats(ctx.svc.adminInfo, query);
  return json({
    users: rows.map((r) => ({
      // No profiles here: the user ID stands in for the display name (as MMR's users-stats).
      displayname: r.userId,
      media_count: r.mediaCount,
      media_length: r.mediaLength,
      user_id: r.userId,
    })),
    ...(query.from + rows.length < total ? { next_token: query.from + rows.length } : {}),
    total,
  });
}
