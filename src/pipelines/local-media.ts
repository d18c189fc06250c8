import { Errors } from '../errors.js';
import type { Db } from '../db/driver.js';
import { getMedia, type MediaRow } from '../db/media.js';
import { getReservation } from '../db/reservations.js';
import type { MediaRowCache } from '../cache/media-rows.js';
import type { UploadWaiters } from '../cache/upload-waiters.js';

// Our own homeservers' media rows: what downloads, thumbnails and federation serve from.

export interface ResolveDeps {
  db: Db;
  mediaRows: MediaRowCache;
  waiters: UploadWaiters;
}

export interface ResolveInput {
  origin: string;
  mediaId: string;
  /** How long to wait for a pending async upload (already clamped). */
  timeoutMs: number;
  /** False on the legacy unauthenticated endpoints: frozen media is hidden there. */
  authenticated: boolean;
}

async function lookup(deps: ResolveDeps, origin: string, mediaId: string): Promise<MediaRow | null> {
  const hit = deps.mediaRows.get(origin, mediaId);
  if (hit) return hit;
  const row = await getMedia(deps.db, origin, mediaId);
  if (row) deps.mediaRows.set(row);
  return row;
}

// Step 1: the row, from the row cache or the database.
// Step 2: no row but a live reservation: wait for the async upload (woken by the PUT).
// Step 3: hide quarantined media, and frozen media on unauthenticated endpoints.
export async function resolveLocalMedia(deps: ResolveDeps, input: ResolveInput): Promise<MediaRow> {
  let row = await lookup(deps, input.origin, input.mediaId);
  if (!row) {
    const res = await getReservation(deps.db, input.origin, input.mediaId);
    if (!res || res.expiresTs <= Date.now()) throw Errors.notFound();
    const key = `${input.origin}/${input.mediaId}`;
    const landed = await deps.waiters.wait(
      key,
      input.timeoutMs,
      async () => (await getMedia(deps.db, input.origin, input.mediaId)) !== null,
    );
    if (landed) row = await lookup(deps, input.origin, input.mediaId);
    if (!row) throw Errors.notYetUploaded();
  }
  assertVisible(row, input.authenticated);
  return row;
}

/** Quarantined media is hidden, and (MSC3916 freeze) media created or cached after the freeze
 * is served only on authenticated endpoints. Local and remote media alike. */
export function assertVisible(row: MediaRow, authenticated: boolean): void {
  if (row.quarantined) throw Errors.quarantined();
  if (row.requiresAuth && !authenticated) throw Errors.notFound('Media not found');
}
