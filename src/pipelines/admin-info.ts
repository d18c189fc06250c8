import { Errors } from '../errors.js';
import type { LoadedConfig, ThumbnailsSection } from '../config/schema.js';
import type { Db } from '../db/driver.js';
import { getMedia, type MediaRow } from '../db/media.js';
import { listThumbnails } from '../db/thumbnails.js';
import {
  serverUsage,
  uploadsOf,
  userStatsPage,
  userTotals,
  userUploads,
  type ServerUsage,
  type UploadRow,
  type UserStat,
  type UserStatsQuery,
  type UserTotals,
} from '../db/usage.js';
import type { Datastore } from '../datastores/datastore.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { MediaRowCache } from '../cache/media-rows.js';
import type { UploadWaiters } from '../cache/upload-waiters.js';
import type { Logger } from '../logging/logger.js';
import type { FederationClient } from '../matrix/federation-client.js';
import type { ImagePools } from '../pools/thumbnails.js';
import { assertVisible, resolveLocalMedia } from './local-media.js';
import { datastoreOf } from './steps/datastore-of.js';
import { thumbnailLimits } from './thumbnail.js';
import { byteLimit } from '../config/limits.js';
import { readOwned } from '../datastores/read-owned.js';

// MMR's read-only information endpoints: media info (any user), and the admin usage reports
// and federation test. Nothing here writes; every list is bounded (the caps below are part of
// the API and stated in the README).

export type { ServerUsage, UploadRow, UserStat, UserStatsQuery, UserTotals };

export interface AdminInfoDeps {
  config(): LoadedConfig;
  db: Db;
  datastores: DatastoreRegistry;
  mediaRows: MediaRowCache;
  waiters: UploadWaiters;
  thumbnails: ImagePools;
  federation: FederationClient;
}

/** `uploaded` lists: at most this many MXC URIs per user, and this many in one answer. */
export const UPLOADED_PER_USER = 10_000;
export const UPLOADED_PER_ANSWER = 100_000;
/** Users in one usage/users answer, and rows in one usage/uploads answer. */
export const USERS_PER_ANSWER = 10_000;
export const UPLOADS_PER_ANSWER = 10_000;
/** How much of a blob is read to find an image's dimensions: its header is near the start. */
const INFO_HEADER_BYTES = 4 * 1024 * 1024;

// ---- Media info ----

export interface MediaInfoRequest {
  origin: string;
  mediaId: string;
  allowRemote: boolean;
  timeoutMs: number;
  thumbnailsCfg: ThumbnailsSection;
  log: Logger;
}

export interface AudioFacts {
  durationMs: number;
  channels: number;
  totalSamples: number;
  /** 768 peaks in 0..1 (MMR's key_samples). */
  keySamples: number[];
}

export interface MediaInfo {
  row: MediaRow;
  width?: number;
  height?: number;
  audio?: AudioFacts;
  thumbnails: { width: number; height: number; contentType: string; sizeBytes: number }[];
}

// Step 1: the row: our own media (waiting for a pending async upload), or another server's
//         as stored here; never fetched. Quarantined media is not found (frozen is fine:
//         this endpoint is authenticated).
// Step 2: an image's dimensions, from the start of its blob, on the thumbnail pool.
//         Audio instead: duration, channels and waveform from the whole file (ffmpeg, on the
//         thumbnail pool), as MMR computes them on request.
// Step 3: the thumbnails already stored, by output size.
export async function mediaInfo(deps: AdminInfoDeps, r: MediaInfoRequest): Promise<MediaInfo> {
  const row = await step1Row(deps, r);
  const isAudio = row.contentType?.toLowerCase().startsWith('audio/') ?? false;
  const dims = isAudio ? await step2Audio(deps, row, r) : await step2Dimensions(deps, row, r);
  const thumbs = await listThumbnails(deps.db, row.origin, row.mediaId);
  const thumbnails = thumbs
    .map((t) => ({ width: t.outWidth, height: t.outHeight, contentType: t.contentType, sizeBytes: t.sizeBytes }))
    .sort((a, b) => a.width - b.width || a.height - b.height || a.sizeBytes - b.sizeBytes);
  return { row, ...dims, thumbnails };
}

async function step1Row(deps: AdminInfoDeps, r: MediaInfoRequest): Promise<MediaRow> {
  const { origin, mediaId } = r;
  if (deps.config().domains.has(origin))
    return resolveLocalMedia(deps, { origin, mediaId, timeoutMs: r.timeoutMs, authenticated: true });
  if (!r.allowRemote) throw Errors.notFound('Remote media was not requested (allow_remote=false)');
  const row = deps.mediaRows.get(origin, mediaId) ?? (await getMedia(deps.db, origin, mediaId));
  if (!row) throw Errors.notFound('Remote media is not stored here');
  assertVisible(row, true);
  return row;
}

async function step2Dimensions(
  deps: AdminInfoDeps,
  row: MediaRow,
  r: MediaInfoRequest,
): Promise<{ width?: number; height?: number }> {
  // As MMR: only media stored as an image. Video types are left out of the sniffed types so
  // identify never starts ffmpeg for an info request.
  if (!row.contentType?.toLowerCase().startsWith('image/') || row.sizeBytes === 0) return {};
  const ds = datastoreOf(deps.datastores, row, r.log, 'media');
  const limits = thumbnailLimits(r.thumbnailsCfg);
  try {
    const head = await readHead(ds, row.location, Math.min(row.sizeBytes, INFO_HEADER_BYTES));
    const got = await deps.thumbnails.identify(head, {
      ...limits,
      types: limits.types.filter((t) => t.startsWith('image/')),
    });
    return got.ok ? { width: got.width, height: got.height } : {};
  } catch (e) {
    // A full image pool (429) or an unreadable blob costs the dimensions, not the answer.
    r.log.debug('media info: dimensions not read', { mediaId: row.mediaId, error: (e as Error).message });
    return {};
  }
}

async function step2Audio(deps: AdminInfoDeps, row: MediaRow, r: MediaInfoRequest): Promise<{ audio?: AudioFacts }> {
  const cfg = r.thumbnailsCfg;
  if (row.sizeBytes === 0 || row.sizeBytes > byteLimit(cfg.maxSourceBytes)) return {};
  const ds = datastoreOf(deps.datastores, row, r.log, 'media');
  try {
    const got = await deps.thumbnails.audioInfo(() => readOwned(ds, row.location, row.sizeBytes), thumbnailLimits(cfg));
    if (!got.ok) {
      r.log.debug('media info: audio not read', { mediaId: row.mediaId, reason: got.message });
      return {};
    }
    const { durationMs, channels, totalSamples, keySamples } = got;
    return { audio: { durationMs, channels, totalSamples, keySamples } };
  } catch (e) {
    r.log.debug('media info: audio not read', { mediaId: row.mediaId, error: (e as Error).message });
    return {};
  }
}

/** The first `n` bytes of a blob: random access where the store has it, else a ranged stream. */
async function readHead(ds: Datastore, location: string, n: number): Promise<Uint8Array> {
  if (ds.readAt) return ds.readAt(location, 0, n);
  const chunks: Buffer[] = [];
  for await (const chunk of ds.openStream(location, { start: 0, end: n - 1 })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// ---- Usage reports (repo admins; users-stats also local admins) ----

export function domainUsage(deps: AdminInfoDeps, origin: string): Promise<ServerUsage> {
  return serverUsage(deps.db, origin);
}

export interface UserUsage extends UserTotals {
  /** Media IDs, oldest first, capped at UPLOADED_PER_USER (and UPLOADED_PER_ANSWER in all). */
  mediaIds: string[];
}

// Step 1: exact totals per uploader (every upload counted, whatever the list caps).
// Step 2: each listed uploader's media IDs, capped.
export async function usersUsage(
  deps: AdminInfoDeps,
  r: { origin: string; userIds: string[] | null },
): Promise<UserUsage[]> {
  const totals = await userTotals(deps.db, r.origin, r.userIds, USERS_PER_ANSWER);
  const ids = await userUploads(
    deps.db,
    r.origin,
    totals.map((t) => t.userId),
    UPLOADED_PER_USER,
    UPLOADED_PER_ANSWER,
  );
  const byUser = new Map<string, string[]>(totals.map((t) => [t.userId, []]));
  for (const x of ids) byUser.get(x.userId)?.push(x.mediaId);
  return totals.map((t) => ({ ...t, mediaIds: byUser.get(t.userId) ?? [] }));
}

export function uploadsUsage(
  deps: AdminInfoDeps,
  r: { origin: string; mediaIds: string[] | null },
): Promise<UploadRow[]> {
  return uploadsOf(deps.db, r.origin, r.mediaIds, UPLOADS_PER_ANSWER);
}

export function usersStats(deps: AdminInfoDeps, q: UserStatsQuery): Promise<{ rows: UserStat[]; total: number }> {
  return userStatsPage(deps.db, q);
}

// ---- Federation test ----

export interface FederationTest {
  /** Where discovery led: scheme, connect address and port (MMR's base_url). */
  baseUrl: string;
  /** The Host header (and certificate name) requests there carry (MMR's hostname). */
  hostname: string;
  versions: unknown;
}

/** Discovery plus `/_matrix/federation/v1/version`; any failure is MMR's 500 with the reason. */
export async function federationTest(deps: AdminInfoDeps, serverName: string, log: Logger): Promise<FederationTest> {
  const timeoutMs = Math.min(deps.config().global.timeouts.federationTimeoutSeconds * 1000, 30_000);
  try {
    const { target, json } = await deps.federation.version(serverName, timeoutMs);
    const scheme = target.baseUrl.startsWith('http://') ? 'http' : 'https';
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    return { baseUrl: `${scheme}://${host}:${target.port}`, hostname: target.hostHeader, versions: json };
  } catch (e) {
    log.info('federation test failed', { serverName, error: (e as Error).message });
    throw Errors.unknown(`Federation test of ${serverName} failed: ${(e as Error).message}`);
  }
}
