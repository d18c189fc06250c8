import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for quarantine state and media attributes (migrations/0005_moderation.up.sql).
// A quarantine is per hash within a scope: '*' (every homeserver, a repo admin's) or one origin
// (a local admin's). Pinned media (attribute purpose 'pinned') is never flagged.

export const FLEET_SCOPE = '*';

const PINNED = `EXISTS (SELECT 1 FROM media_attributes a
  WHERE a.origin = m.origin AND a.media_id = m.media_id AND a.purpose = 'pinned')`;
const NOT_PINNED = `NOT ${PINNED}`;

export type MediaPurpose = 'none' | 'pinned';

export async function getPurpose(q: Queryable, origin: string, mediaId: string): Promise<MediaPurpose> {
  const r = await q.query<{ purpose: string }>(
    'SELECT purpose FROM media_attributes WHERE origin = $1 AND media_id = $2',
    [origin, mediaId],
  );
  return r.rows[0]?.purpose === 'pinned' ? 'pinned' : 'none';
}

export async function setPurpose(q: Queryable, origin: string, mediaId: string, purpose: MediaPurpose): Promise<void> {
  if (purpose === 'none') {
    await q.query('DELETE FROM media_attributes WHERE origin = $1 AND media_id = $2', [origin, mediaId]);
    return;
  }
  await q.query(
    `INSERT INTO media_attributes (origin, media_id, purpose) VALUES ($1, $2, $3)
     ON CONFLICT (origin, media_id) DO UPDATE SET purpose = EXCLUDED.purpose`,
    [origin, mediaId, purpose],
  );
}

/** Whether new bytes with this hash, for this origin, are refused (under the hash lock). */
export async function isHashBlocked(q: Queryable, sha256: string, origin: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM quarantined_hashes WHERE sha256_hash = $1 AND scope IN ($2, $3) LIMIT 1', [
    sha256,
    FLEET_SCOPE,
    origin,
  ]);
  return r.rows.length > 0;
}

/** A hash as an upload's transaction sees it: who blocked it, and where it is stored. */
export interface UploadHashState {
  /** quarantined_hashes scopes: FLEET_SCOPE (every homeserver) or an origin. */
  scopes: string[];
  candidates: { datastoreId: string; location: string; sizeBytes: number }[];
}

/** Whether a hash's block scopes refuse an upload to `origin`. */
export const blockedFor = (st: UploadHashState, origin: string): boolean =>
  st.scopes.includes(FLEET_SCOPE) || st.scopes.includes(origin);

/**
 * isHashBlocked and findBlobByHash for many hashes in one statement (an upload's transaction, or
 * a group of them: with PGlite each statement is a round trip through the one connection every
 * request shares, with Postgres one through libpq). Every hash asked for is in the map.
 */
export async function uploadHashStates(q: Queryable, hashes: readonly string[]): Promise<Map<string, UploadHashState>> {
  const out = new Map<string, UploadHashState>(hashes.map((h) => [h, { scopes: [], candidates: [] }]));
  const r = await q.query<Record<string, unknown>>(
    `SELECT 'b' AS kind, sha256_hash, scope AS a, NULL AS b, NULL::bigint AS c
       FROM quarantined_hashes WHERE sha256_hash = ANY($1::text[])
     UNION ALL
     SELECT DISTINCT 'c', sha256_hash, datastore_id, location, size_bytes
       FROM media WHERE sha256_hash = ANY($1::text[]) AND location <> ''`,
    [[...new Set(hashes)]],
  );
  for (const x of r.rows) {
    const st = out.get(x.sha256_hash as string);
    if (!st) continue;
    if (x.kind === 'b') st.scopes.push(x.a as string);
    else st.candidates.push({ datastoreId: x.a as string, location: x.b as string, sizeBytes: num(x.c) });
  }
  return out;
}

/** uploadHashStates for one upload's hash: blocked for its origin, and the stored blobs. */
export async function uploadHashState(
  q: Queryable,
  sha256: string,
  origin: string,
): Promise<{ blocked: boolean; candidates: UploadHashState['candidates'] }> {
  const st = (await uploadHashStates(q, [sha256])).get(sha256)!;
  return { blocked: blockedFor(st, origin), candidates: st.candidates };
}

export async function blockScopes(q: Queryable, sha256: string): Promise<string[]> {
  const r = await q.query<{ scope: string }>('SELECT scope FROM quarantined_hashes WHERE sha256_hash = $1', [sha256]);
  return r.rows.map((x) => x.scope);
}

export async function blockHashes(q: Queryable, hashes: string[], scope: string, actor: string): Promise<void> {
  if (hashes.length === 0) return;
  await q.query(
    `INSERT INTO quarantined_hashes (sha256_hash, scope, actor, created_ts)
     SELECT h, $2, $3, $4 FROM unnest($1::text[]) AS h ON CONFLICT DO NOTHING`,
    [hashes, scope, actor, Date.now()],
  );
}

/** Lifts a block: one scope, or every scope (scope null, a repo admin). */
export async function unblockHash(q: Queryable, sha256: string, scope: string | null): Promise<void> {
  if (scope === null) await q.query('DELETE FROM quarantined_hashes WHERE sha256_hash = $1', [sha256]);
  else await q.query('DELETE FROM quarantined_hashes WHERE sha256_hash = $1 AND scope = $2', [sha256, scope]);
}

export interface FlaggedRow {
  origin: string;
  mediaId: string;
  sha256: string;
}

/**
 * Flags every unpinned, not yet quarantined row of these hashes (within `origin` when given).
 * Returns the rows flagged, for cache invalidation and counts.
 */
export async function flagHashes(
  q: Queryable,
  hashes: string[],
  origin: string | null,
  actor: string,
): Promise<FlaggedRow[]> {
  if (hashes.length === 0) return [];
  const r = await q.query<Record<string, unknown>>(
    `UPDATE media m SET quarantined = TRUE, quarantined_by = $2
     WHERE m.sha256_hash = ANY($1::text[]) AND NOT m.quarantined AND ($3::text IS NULL OR m.origin = $3) AND ${NOT_PINNED}
     RETURNING m.origin, m.media_id, m.sha256_hash`,
    [hashes, actor, origin],
  );
  return r.rows.map((x) => ({
    origin: x.origin as string,
    mediaId: x.media_id as string,
    sha256: x.sha256_hash as string,
  }));
}

/**
 * Clears the flag on a hash's rows (within `origin` when given). Tombstones (their blob was
 * purged) cannot come back: they are returned apart, for the caller to delete and reserve.
 */
export async function unflagHash(
  q: Queryable,
  sha256: string,
  origin: string | null,
): Promise<{ restored: FlaggedRow[]; tombstones: FlaggedRow[] }> {
  const r = await q.query<Record<string, unknown>>(
    `UPDATE media m SET quarantined = FALSE, quarantined_by = NULL
     WHERE m.sha256_hash = $1 AND m.quarantined AND m.location <> '' AND ($2::text IS NULL OR m.origin = $2)
     RETURNING m.origin, m.media_id, m.sha256_hash`,
    [sha256, origin],
  );
  const t = await q.query<Record<string, unknown>>(
    `DELETE FROM media m WHERE m.sha256_hash = $1 AND m.quarantined AND m.location = '' AND ($2::text IS NULL OR m.origin = $2)
     RETURNING m.origin, m.media_id, m.sha256_hash`,
    [sha256, origin],
  );
  const rows = (x: Record<string, unknown>[]) =>
    x.map((y) => ({ origin: y.origin as string, mediaId: y.media_id as string, sha256: y.sha256_hash as string }));
  return { restored: rows(r.rows), tombstones: rows(t.rows) };
}

/** Hashes of the next media rows of a selection, by key order after `after` (keyset batches). */
export async function mediaKeysPage(
  q: Queryable,
  where: MediaSelection,
  after: { origin: string; mediaId: string } | null,
  limit: number,
): Promise<{ origin: string; mediaId: string; sha256: string; pinned: boolean }[]> {
  const params: unknown[] = [after?.origin ?? '', after?.mediaId ?? '', limit];
  const conds = [`(m.origin, m.media_id) > ($1, $2)`, ...selectionSql(where, params)];
  const r = await q.query<Record<string, unknown>>(
    `SELECT m.origin, m.media_id, m.sha256_hash, ${PINNED} AS pinned FROM media m
     WHERE ${conds.join(' AND ')} ORDER BY m.origin, m.media_id LIMIT $3`,
    params,
  );
  return r.rows.map((x) => ({
    origin: x.origin as string,
    mediaId: x.media_id as string,
    sha256: x.sha256_hash as string,
    pinned: Boolean(x.pinned),
  }));
}

/** Which media rows an admin action is about; every field narrows (AND). */
export interface MediaSelection {
  origin?: string;
  /** Origins excluded (our own homeservers, for remote-only purges). */
  notOrigins?: string[];
  userId?: string;
  createdBefore?: number;
  /** Synapse's size_gt. */
  sizeGreaterThan?: number;
  quarantined?: boolean;
  /** Rows that still hold a blob (not tombstones). */
  withBlob?: boolean;
  /** Exactly these media (origin/mediaId pairs). */
  keys?: { origin: string; mediaId: string }[];
  /** Media IDs excluded (Synapse's keep_profiles: avatars), as origin/mediaId. */
  exceptKeys?: string[];
}

function selectionSql(s: MediaSelection, params: unknown[]): string[] {
  const out: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (s.origin !== undefined) out.push(`m.origin = ${p(s.origin)}`);
  if (s.notOrigins?.length) out.push(`NOT (m.origin = ANY(${p(s.notOrigins)}::text[]))`);
  if (s.userId !== undefined) out.push(`m.user_id = ${p(s.userId)}`);
  if (s.createdBefore !== undefined) out.push(`m.creation_ts < ${p(s.createdBefore)}`);
  if (s.sizeGreaterThan !== undefined) out.push(`m.size_bytes > ${p(s.sizeGreaterThan)}`);
  if (s.quarantined !== undefined) out.push(s.quarantined ? 'm.quarantined' : 'NOT m.quarantined');
  if (s.withBlob) out.push(`m.location <> ''`);
  if (s.keys) {
    const origins = s.keys.map((k) => k.origin);
    const ids = s.keys.map((k) => k.mediaId);
    out.push(`(m.origin, m.media_id) IN (SELECT * FROM unnest(${p(origins)}::text[], ${p(ids)}::text[]))`);
  }
  if (s.exceptKeys?.length) out.push(`NOT ((m.origin || '/' || m.media_id) = ANY(${p(s.exceptKeys)}::text[]))`);
  return out;
}

export async function countQuarantined(q: Queryable, origin: string | null): Promise<number> {
  const r = await q.query<{ n: unknown }>(
    'SELECT COUNT(*) AS n FROM media WHERE quarantined AND ($1::text IS NULL OR origin = $1)',
    [origin],
  );
  return num(r.rows[0]?.n ?? 0);
}
