import { Errors } from '../../errors.js';
import type { Result } from '../../http/types.js';
import { json } from '../../http/types.js';
import {
  domainUsage,
  federationTest,
  uploadsUsage,
  usersStats,
  usersUsage,
  type UserStatsQuery,
} from '../../pipelines/admin-info.js';
import { serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';

// MMR's usage reports (`admin/usage/{serverName}...`) and federation test, in MMR's shapes.
// Read-only; the caps on long lists live in the pipeline (pipelines/admin-info.ts).

/** A query parameter that may repeat (`user_id`, `mxc`); null when absent, at most `max` values. */
function repeated(ctx: Ctx, name: string, max: number): string[] | null {
  const all = ctx.req.query.getAll(name);
  if (all.length === 0) return null;
  if (all.length > max) throw Errors.invalidParam(`${name}: expected at most ${max} values, got ${all.length}`);
  return all;
}

const quote = (v: string) => `'${v.length > 64 ? v.slice(0, 64) + '…' : v}'`;

export async function domainUsageHandler(ctx: Ctx): Promise<Result> {
  const u = await domainUsage(ctx.svc.adminInfo, serverNameParam(ctx.params.serverName));
  return json({
    raw_bytes: {
      total: u.mediaBytes + u.thumbnailBytes,
      media: u.mediaBytes,
      thumbnails: u.thumbnailBytes,
    },
    raw_counts: {
      total: u.mediaCount + u.thumbnailCount,
      media: u.mediaCount,
      thumbnails: u.thumbnailCount,
    },
  });
}

export async function usersUsageHandler(ctx: Ctx): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const userIds = repeated(ctx, 'user_id', 10_000);
  const users = await usersUsage(ctx.svc.adminInfo, { origin, userIds });
  // Per user, media only: MMR could not attribute thumbnails to a user, nor can we.
  const out: Record<string, unknown> = {};
  for (const u of users) {
    out[u.userId] = {
      raw_bytes: { total: u.bytes, media: u.bytes },
      raw_counts: { total: u.count, media: u.count },
      uploaded: u.mediaIds.map((id) => `mxc://${origin}/${id}`),
    };
  }
  return json(out);
}

/** `mxc://{origin}/{mediaId}` → mediaId; MMR's 400 when the server differs from the path's. */
function mediaIdOf(mxc: string, origin: string): string {
  const m = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]{1,255})$/.exec(mxc);
  if (!m) throw Errors.invalidParam(`mxc: expected mxc://{serverName}/{mediaId}, got ${quote(mxc)}`);
  if (m[1] !== origin) throw Errors.invalidParam(`mxc: MXC URIs must match the requested server, got ${quote(mxc)}`);
  return m[2]!;
}

export async function uploadsUsageHandler(ctx: Ctx): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const mediaIds = repeated(ctx, 'mxc', 10_000)?.map((m) => mediaIdOf(m, origin)) ?? null;
  const rows = await uploadsUsage(ctx.svc.adminInfo, { origin, mediaIds });
  const out: Record<string, unknown> = {};
  for (const r of rows) {
    out[`mxc://${origin}/${r.mediaId}`] = {
      size_bytes: r.sizeBytes,
      uploaded_by: r.userId,
      datastore_id: r.datastoreId,
      datastore_location: r.location,
      sha256_hash: r.sha256,
      quarantined: r.quarantined,
      upload_name: r.uploadName ?? '',
      content_type: r.contentType ?? '',
      created_ts: r.creationTs,
    };
  }
  return json(out);
}

// ---- users-stats (Synapse's users-media statistics, as MMR offered it) ----

/** MMR's default page is 100 rows, then capped at 50; we keep both numbers. */
const STATS_DEFAULT_LIMIT = 100;
const STATS_MAX_LIMIT = 50;
const ORDERS = ['media_count', 'media_length', 'user_id'] as const;

function intParam(name: string, v: string | null, min: 0 | 1): number | null {
  if (v === null) return null;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min)
    throw Errors.invalidParam(
      `${name}: expected a ${min === 1 ? 'positive' : 'non-negative'} integer, got ${quote(v)}`,
    );
  return Number(v);
}

export function parseUserStatsQuery(ctx: Ctx, origin: string): UserStatsQuery {
  const q = ctx.req.query;
  const orderRaw = q.get('order_by');
  // Synapse also sorts by displayname; here the display name is the user ID.
  const order = orderRaw === null || orderRaw === 'displayname' ? 'user_id' : orderRaw;
  if (!(ORDERS as readonly string[]).includes(order))
    throw Errors.invalidParam(`order_by: expected one of ${ORDERS.map(quote).join(', ')}, got ${quote(order)}`);
  const dir = q.get('dir') ?? 'f';
  // MMR refused `f` and an absent `dir` (a bug); Synapse's default is `f`, ascending.
  if (dir !== 'f' && dir !== 'b') throw Errors.invalidParam(`dir: expected 'f' or 'b', got ${quote(dir)}`);
  const fromTs = intParam('from_ts', q.get('from_ts'), 0);
  const untilTs = intParam('until_ts', q.get('until_ts'), 0);
  if (untilTs !== null && untilTs <= (fromTs ?? -1))
    throw Errors.invalidParam(`until_ts: expected a timestamp greater than from_ts, got ${quote(String(untilTs))}`);
  const search = q.get('search_term');
  if (search === '') throw Errors.invalidParam("search_term: expected a non-empty string, got ''");
  return {
    origin,
    orderBy: order as UserStatsQuery['orderBy'],
    ascending: dir === 'f',
    from: intParam('from', q.get('from'), 0) ?? 0,
    limit: Math.min(intParam('limit', q.get('limit'), 1) ?? STATS_DEFAULT_LIMIT, STATS_MAX_LIMIT),
    fromTs,
    untilTs,
    search,
  };
}

/** Repo admins for any server; a local admin (auth mode 'localadmin') for its own Host only. */
export async function usersStatsHandler(ctx: Ctx): Promise<Result> {
  const origin = serverNameParam(ctx.params.serverName);
  const user = ctx.user!;
  if (!user.isRepoAdmin && (user.isLocalAdmin !== true || origin !== ctx.serverName))
    throw Errors.forbidden('Local admins may only see the statistics of their own server');
  const query = parseUserStatsQuery(ctx, origin);
  const { rows, total } = await usersStats(ctx.svc.adminInfo, query);
  return json({
    users: rows.map((r) => ({
      user_id: r.userId,
      displayname: r.userId,
      media_count: r.mediaCount,
      media_length: r.mediaLength,
    })),
    // As Synapse and MMR: a next_token only while rows follow this page.
    ...(query.from + rows.length < total ? { next_token: query.from + rows.length } : {}),
    total,
  });
}

export async function federationTestHandler(ctx: Ctx): Promise<Result> {
  const serverName = serverNameParam(ctx.params.serverName);
  const t = await federationTest(ctx.svc.adminInfo, serverName, ctx.log);
  return json({ base_url: t.baseUrl, hostname: t.hostname, versions_response: t.versions });
}
