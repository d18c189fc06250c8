import type { LoadedConfig, DomainConfig } from '../config/schema.js';
import type { Db } from '../db/driver.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { HomeserverClient } from '../matrix/homeserver.js';
import type { TokenCache } from '../cache/tokens.js';
import type { MediaRowCache } from '../cache/media-rows.js';
import type { BlobCache } from '../cache/blob-cache.js';
import type { UploadWaiters } from '../cache/upload-waiters.js';
import type { Logger } from '../logging/logger.js';
import type { HttpRequest, Result } from '../http/types.js';
import type { ThumbnailPools } from '../pools/thumbnails.js';
import type { ThumbnailRowCache } from '../cache/thumbnail-rows.js';
import type { SingleFlight } from '../cache/singleflight.js';
import type { FreshThumbnails } from '../cache/fresh-thumbnails.js';
import type { Thumbnail } from '../pipelines/thumbnail.js';
import type { Pregenerator } from '../pipelines/thumbnail-pregenerate.js';
import type { FederationClient } from '../matrix/federation-client.js';
import type { ServerKeyFetcher } from '../matrix/server-keys.js';
import type { RemoteFetchState } from '../cache/remote-state.js';
import type { MediaRow } from '../db/media.js';
import type { PreviewDeps } from '../pipelines/preview.js';
import type { RedisServices } from '../redis/services.js';
import type { TaskRunner } from '../tasks/runner.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';

// Everything a handler may use, injected by main.ts (no singletons).
export interface Services {
  config(): LoadedConfig;
  db: Db;
  datastores: DatastoreRegistry;
  homeserver: HomeserverClient;
  tokens: TokenCache;
  mediaRows: MediaRowCache;
  /** Hot blob contents by sha256 (downloads.cache). */
  blobCache: BlobCache;
  waiters: UploadWaiters;
  /** The Redis ring, media cache and upload notices (no-ops unless redis.enabled). */
  redis: RedisServices;
  thumbnails: ThumbnailPools;
  thumbnailRows: ThumbnailRowCache;
  thumbnailFlights: SingleFlight<Thumbnail[]>;
  freshThumbnails: FreshThumbnails;
  pregenerator: Pregenerator;
  federation: FederationClient;
  serverKeys: ServerKeyFetcher;
  remoteFlights: SingleFlight<MediaRow>;
  remoteState: RemoteFetchState;
  /** URL previews: parse pool, gate, flights, result cache, oEmbed providers. */
  previews: Omit<PreviewDeps, 'db' | 'datastores' | 'log' | 'config'>;
  /** Background tasks (datastore transfers): claimed across the fleet, resumed after crashes. */
  tasks: TaskRunner;
  log: Logger;
  /** The application metrics (media_*), on the registry the metrics listener serves. */
  metrics: MediaMetrics;
  state: { shuttingDown: boolean };
}

export interface AuthUser {
  userId: string;
  isGuest: boolean;
  /** Listed in `admins`, or the shared-secret token. */
  isRepoAdmin: boolean;
  token: string;
  /** Federation requests: the server whose X-Matrix signature was verified. */
  server?: string;
}

/**
 * none: no token looked at. optional: a token is used if valid, ignored otherwise.
 * user: a real (non-guest) user. guest: any user including guests (MSC4189 download and
 * thumbnail). admin: a repo admin. server: another homeserver, by X-Matrix signature.
 */
export type AuthMode = 'none' | 'optional' | 'user' | 'guest' | 'admin' | 'server';

export interface Ctx {
  req: HttpRequest;
  params: Record<string, string>;
  /** The homeserver this request is for, chosen by Host. Absent on host-less routes. */
  serverName: string;
  domain: DomainConfig;
  user: AuthUser | null;
  svc: Services;
  log: Logger;
}

export interface Route {
  name: string;
  methods: string[];
  /** Patterns; `{r0,v1,v3}` expands, `:name` is one path segment. */
  paths: string[];
  auth: AuthMode;
  /** Streams the request body to the handler (uploads) or reads it small (JSON). */
  body?: 'stream' | 'small';
  /** Answers without a configured Host (health, version). */
  hostless?: boolean;
  handler(ctx: Ctx): Promise<Result>;
}
