import type { LoadedConfig, DomainConfig } from '../config/schema.js';
import type { HomeserverClient } from '../matrix/homeserver.js';
import type { Logger } from '../logging/logger.js';
import type { HttpRequest, Result } from '../http/types.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import type { AccessTokenDeps, AuthUser } from '../pipelines/access-token.js';
import type { AsyncUploadDeps } from '../pipelines/upload-async.js';
import type { DownloadDeps } from '../pipelines/download.js';
import type { ServeThumbnailDeps } from '../pipelines/serve-thumbnail.js';
import type { IdenticonDeps } from '../pipelines/identicon.js';
import type { AdminDeps } from '../pipelines/admin-datastores.js';
import type { ModerationDeps } from '../pipelines/admin/moderation-deps.js';
import type { ReadinessDeps } from '../pipelines/readiness.js';
import type { PreviewDeps } from '../preview/pipeline.js';
import type { AdminInfoDeps } from '../pipelines/admin-info.js';
import type { RoleDeps } from '../pipelines/roles.js';
import type { RateLimiter } from '../ratelimit/limiter.js';

export type { AuthUser };

/**
 * What handlers are given, built by src/start/services.ts (no singletons): per pipeline, the
 * few stores it uses, which the handler passes on without looking inside. Handlers never
 * touch a store themselves (test/layering.test.ts keeps src/api free of db, datastores and
 * cache imports).
 */
export interface Services {
  config(): LoadedConfig;
  log: Logger;
  /** The application metrics (media_*), on the registry the metrics listener serves. */
  metrics: MediaMetrics;
  state: { shuttingDown: boolean };
  /** Proxied client-server calls (versions). */
  homeserver: HomeserverClient;
  auth: AccessTokenDeps;
  /** Who is a local admin (the Host's homeserver's admin API, cached). */
  roles: RoleDeps;
  upload: AsyncUploadDeps;
  download: DownloadDeps;
  thumbnail: ServeThumbnailDeps;
  identicon: IdenticonDeps;
  /** URL previews: parse pool, gate, flights, result cache, oEmbed providers. */
  preview: PreviewDeps;
  /** Datastore and task admin (MMR's admin API). */
  admin: AdminDeps;
  /** Quarantine, purge, attributes, audit. */
  moderation: ModerationDeps;
  readiness: ReadinessDeps;
  /** Media info, usage reports and the federation test (MMR's read-only admin API). */
  adminInfo: AdminInfoDeps;
  /** Per-client request and byte buckets (rateLimit), shared through Redis where configured. */
  rateLimit: RateLimiter;
}

/**
 * none: no token looked at. optional: a token is used if valid, ignored otherwise.
 * user: a real (non-guest) user. guest: any user including guests (MSC4189 download and
 * thumbnail). admin: a repo admin. localadmin: a repo admin, or an admin of the homeserver the
 * request's Host names (asked through its adminApiKind); the handler still scopes what a local
 * admin may touch to that homeserver. server: another homeserver, by X-Matrix signature.
 */
export type AuthMode = 'none' | 'optional' | 'user' | 'guest' | 'admin' | 'localadmin' | 'server';

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
