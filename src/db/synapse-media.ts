import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for Synapse's media admin API (api/admin/synapse.ts): one media row with what
// Synapse's media_info shows (who quarantined it, whether it is protected), and a user's
// uploads paged as Synapse pages them (offset `from`, its order_by values, total).

export interface SynapseMediaRow {
  origin: string;
  mediaId: string;
  /** '' for remote media (its uploader is not known here). */
  userId: string;
  uploadName: string | null;
  contentType: string | null;
  sizeBytes: number;
  creationTs: number;
  sha256: string;
  /** '' for a tombstone (quarantined, blob purged). */
  location: string;
  quarantinedBy: string | null;
  requiresAuth: boolean;
  /** Our attribute purpose 'pinned' (Synapse's safe_from_quarantine). */
  pinned: boolean;
}

// Who quarantined a row: its own column, else (a remote copy fetched after its hash was blocked)
// whoever blocked the hash first; '' only if neither is known. NULL when not quarantined.
const QUARANTINED_BY = `CASE WHEN m.quarantined THEN COALESCE(m.quarantined_by,
  (SELECT h.actor FROM quarantined_hashes h WHERE h.sha256_hash = m.sha256_hash ORDER BY h.created_ts LIMIT 1), '')
  END`;

const SELECT = `SELECT m.origin, m.media_id, m.user_id, m.upload_name, m.content_type, m.size_bytes, m.creation_ts,
  m.sha256_hash, m.location, ${QUARANTINED_BY} AS quarantined_by, m.requires_auth,
  COALESCE(a.purpose = 'pinned', FALSE) AS pinned
  FROM media m LEFT JOIN media_attributes a ON a.origin = m.origin AND a.media_id = m.media_id`;

function toRow(x: Record<string, unknown>): SynapseMediaRow {
  return {
    origin: x.origin as string,
    mediaId: x.media_id as string,
    userId: x.user_id as string,
    uploadName: (x.upload_name as string | null) ?? null,
    contentType: (x.content_type as string | null) ?? null,
    sizeBytes: num(x.size_bytes),
    creationTs: num(x.creation_ts),
    sha256: x.sha256_hash as string,
    location: x.location as string,
    quarantinedBy: (x.quarantined_by as string | null) ?? null,
    requiresAuth: Boolean(x.requires_auth),
    pinned: Boolean(x.pinned),
  };
}

export async function synapseMediaRow(q: Queryable, origin: string, mediaId: string): Promise<SynapseMediaRow | null> {
  const r = await q.query(`${SELECT} WHERE m.origin = $1 AND m.media_id = $2`, [origin, mediaId]);
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/** Synapse's order_by values for a user's media. */
export type UserMediaOrder =
  | 'media_id'
  | 'upload_name'
  | 'created_ts'
  | 'last_access_ts'
  | 'media_length'
  | 'media_type'
  | 'quarantined_by'
  | 'safe_from_quarantine';

// Picked from this fixed map, never spliced in from the request. Strings sort by code point
// (COLLATE "C") so pages are the same on every server and locale. We keep no access times:
// last_access_ts sorts (and is answered) as the creation time.
const ORDER_COLUMNS: Record<UserMediaOrder, string> = {
  media_id: 'm.media_id COLLATE "C"',
  upload_name: 'm.upload_name COLLATE "C"',
  created_ts: 'm.creation_ts',
  last_access_ts: 'm.creation_ts',
  media_length: 'm.size_bytes',
  media_type: 'm.content_type COLLATE "C"',
  quarantined_by: `(${QUARANTINED_BY}) COLLATE "C"`,
  safe_from_quarantine: "COALESCE(a.purpose = 'pinned', FALSE)",
};

export interface UserMediaQuery {
  origin: string;
  userId: string;
  orderBy: UserMediaOrder;
  ascending: boolean;
  /** Offset into the ordered list (Synapse's `from` / `next_token`). */
  from: number;
  limit: number;
}

/**
 * One page of a user's uploads to `origin` and how many there are in all. Ties on the order
 * column are broken by ascending media ID (Synapse's rule), so pages neither repeat nor skip.
 */
export async function userMediaPage(
  q: Queryable,
  s: UserMediaQuery,
): Promise<{ rows: SynapseMediaRow[]; total: number }> {
  const order = `${ORDER_COLUMNS[s.orderBy]} ${s.ascending ? 'ASC' : 'DESC'}, m.media_id COLLATE "C" ASC`;
  const page = await q.query(`${SELECT} WHERE m.origin = $1 AND m.user_id = $2 ORDER BY ${order} LIMIT $3 OFFSET $4`, [
    s.origin,
    s.userId,
    s.limit,
    s.from,
  ]);
  const total = await q.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM media WHERE origin = $1 AND user_id = $2', [
    s.origin,
    s.userId,
  ]);
  return { rows: page.rows.map(toRow), total: num(total.rows[0]?.n ?? 0) };
}
