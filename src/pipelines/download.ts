import { Readable } from 'node:stream';
import type { DomainConfig, LoadedConfig } from '../config/schema.js';
import type { MediaRow } from '../db/media.js';
import type { Datastore } from '../datastores/datastore.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { BlobCache, BlobLookup } from '../cache/blob-cache.js';
import type { RedisMediaCache } from '../redis/media-cache.js';
import type { RedisRing } from '../redis/ring.js';
import type { MediaBody } from '../http/types.js';
import type { Logger } from '../logging/logger.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import { resolveLocalMedia, type ResolveDeps } from './local-media.js';
import type { RemoteDeps } from './remote.js';
import { cachedBlobBody } from './steps/serve-blob.js';
import { datastoreOf } from './steps/datastore-of.js';
import { findMedia } from './steps/find-media.js';
import { placeholderImage } from './steps/placeholder.js';
import { hasCode } from '../errors.js';

// A client download (legacy and authenticated endpoints): which media it is, where its bytes
// come from, and whether the client is sent elsewhere for them.

export type { MediaRow };

export interface DownloadDeps extends ResolveDeps, RemoteDeps {
  config(): LoadedConfig;
  datastores: DatastoreRegistry;
  blobCache: BlobCache;
  redis: { media: RedisMediaCache; ring: RedisRing };
  metrics: MediaMetrics;
}

export interface DownloadRequest {
  origin: string;
  mediaId: string;
  timeoutMs: number;
  /** The /_matrix/client/v1/media endpoints; false on the legacy ones. */
  authenticated: boolean;
  /** `allow_remote`: false refuses media of other servers. */
  allowRemote: boolean;
  /** `allow_redirect=true` on a legacy endpoint (spec v1.7): the client follows redirects. */
  allowRedirect: boolean;
  /** GET or HEAD. */
  method: string;
  /** The homeserver asking: its limits, and for remote media its datastores and signing key. */
  domain: DomainConfig;
  log: Logger;
}

export type Download =
  /** 307 to the datastore's public address. */
  | { kind: 'redirect'; url: string }
  /** First request for a remote file: its bytes arrive while they are being stored. */
  | { kind: 'streaming'; contentType: string | null; uploadName: string | null; body: Readable }
  | { kind: 'stored'; row: MediaRow; media: MediaBody }
  /** Quarantined media with quarantine.replaceDownloads: the placeholder image. */
  | { kind: 'placeholder'; contentType: string; media: MediaBody };

/**
 * Where a download may send the client instead of proxying the bytes: the datastore's public
 * address (an S3 publicBaseUrl or a CDN), or null. Authenticated endpoints always may (clients
 * must follow redirects there, MSC3916); the legacy ones only when the client said it follows
 * them, since older clients do not.
 */
export function publicRedirectUrl(
  ds: Datastore,
  location: string,
  authenticated: boolean,
  allowRedirect: boolean,
): string | null {
  if (!ds.publicUrl) return null;
  if (!authenticated && !allowRedirect) return null;
  return ds.publicUrl(location);
}

// Step 1: the row: our own media (waiting for a pending async upload), or another server's
//         (stored, or fetched now and streamed through while it is stored). Quarantined media
//         is 404, or the placeholder image (quarantine.replaceDownloads).
// Step 2: the datastore; a redirect to its public address where allowed, unless the blob is
//         hot enough for the in-process cache (MMR's redirectWhenCached false).
// Step 3: the body: memory first, then Redis (by hash, small files), then the datastore.
export async function downloadMedia(deps: DownloadDeps, r: DownloadRequest): Promise<Download> {
  let found;
  try {
    found = await findMedia(deps, r, true);
  } catch (e) {
    if (hasCode(e, 'MR_ERR_QUARANTINED') && r.domain.quarantine.replaceDownloads) {
      return { kind: 'placeholder', ...(await placeholderImage(r.domain.quarantine.thumbnailPath)) };
    }
    throw e;
  }
  if (found.kind === 'streaming') return found;
  const row = found.row;
  const ds = datastoreOf(deps.datastores, row, r.log, 'media');
  const cache = deps.blobCache;
  let counted: BlobLookup | undefined;
  const redirect = publicRedirectUrl(ds, row.location, r.authenticated, r.allowRedirect);
  if (redirect) {
    // Redirected downloads still count toward admission, and the download that earns the blob
    // its place is proxied once to fill the cache.
    if (ds.redirectWhenCached || !cache.enabled || r.method === 'HEAD') return { kind: 'redirect', url: redirect };
    counted = cache.lookup(row.sha256, row.sizeBytes);
    if (!counted.hit && !counted.admit) return { kind: 'redirect', url: redirect };
  }
  deps.metrics.ageAccessed.observe([], Math.max(0, Date.now() - row.creationTs) / 1000);
  const media = cachedBlobBody({
    cache,
    ds,
    blob: row,
    smallFileBytes: r.domain.downloads.smallFileBytes,
    method: r.method,
    below: (b) => deps.redis.media.wrap(b, row.sha256),
    counted,
  });
  return { kind: 'stored', row, media };
}

export type FederationDownload =
  /** The datastore has a public address: the peer fetches the bytes there (a Location part). */
  | { kind: 'location'; url: string }
  | { kind: 'file'; contentType: string | null; uploadName: string | null; body: Readable };

/** Our own media for another homeserver (federation v1): the file streamed from its datastore. */
export async function federationDownload(
  deps: DownloadDeps,
  r: { origin: string; mediaId: string; timeoutMs: number; log: Logger },
): Promise<FederationDownload> {
  const row = await resolveLocalMedia(deps, { ...r, authenticated: true });
  const ds = datastoreOf(deps.datastores, row, r.log, 'media');
  const publicUrl = ds.publicUrl?.(row.location) ?? null;
  if (publicUrl) return { kind: 'location', url: publicUrl };
  const body =
    row.sizeBytes === 0 ? Readable.from([]) : ds.openStream(row.location, { start: 0, end: row.sizeBytes - 1 });
  return { kind: 'file', contentType: row.contentType, uploadName: row.uploadName, body };
}
