// The shape of media-repo's configuration, with MMR's key names so an MMR operator's
// file loads unchanged. Defaults live in defaults.ts; validation in validate.ts.

export type DatastoreKind = 'all' | 'local_media' | 'remote_media' | 'thumbnails' | 'archives';

export interface AppserviceConfig {
  id: string;
  asToken: string;
  senderUserId: string;
  userNamespaces: { regex: string }[];
}

export interface HomeserverConfig {
  name: string;
  csApi: string;
  backoffAt: number;
  adminApiKind: 'matrix' | 'synapse' | 'dendrite';
  signingKeyPath: string;
}

export interface DatastoreConfig {
  type: 'file' | 's3';
  id: string;
  enabled: boolean;
  forKinds: DatastoreKind[];
  opts: Record<string, unknown>;
}

/** `opts` of an s3 datastore once validated (MMR's keys, plus timeoutSeconds). */
export interface S3DatastoreOpts {
  /** host[:port], no scheme: `ssl` picks https or http. */
  endpoint: string;
  accessKeyId: string;
  accessSecret: string;
  ssl: boolean;
  bucketName: string;
  region: string;
  storageClass: string;
  /** Spool directory for uploads; empty streams them straight into the bucket. */
  tempPath: string;
  publicBaseUrl: string;
  redirectWhenCached: boolean;
  prefixLength: number;
  multipartUploads: boolean;
  timeoutSeconds: number;
}

export interface RepoSection {
  bindAddress: string;
  port: number;
  logDirectory: string;
  logColors: boolean;
  jsonLogs: boolean;
  logLevel: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  trustAnyForwardedAddress: boolean;
  /** Not an MMR key: CIDRs of reverse proxies whose X-Forwarded-For names the client (rate
   * limits key on it); from any other peer the header is ignored. */
  trustedProxies: string[];
  useForwardedHost: boolean;
  freezeUnauthenticatedMedia: boolean;
  /** Not MMR keys. On SIGTERM: seconds /readyz answers 503 with the listener still open (so
   * load balancers see it), then seconds in-flight requests may take before they are cut off. */
  shutdownGraceSeconds: number;
  shutdownDrainSeconds: number;
  /** Not an MMR key: HTTP threads, each a uWS app on the same port (SO_REUSEPORT), the kernel
   * spreading connections; 0 = one per core, at most 16 (src/threads/README.md). */
  httpThreads: number;
}

export interface DatabaseSection {
  /** Postgres DSN; empty means the embedded PGlite database at embeddedPath. */
  postgres: string;
  /**
   * Not an MMR key: the Postgres schema media-repo's tables live in ('' = the DSN's default,
   * normally public). Lets media-repo share MMR's database without touching MMR's tables
   * (both name a table `media`). Created when missing.
   */
  schema: string;
  embeddedPath: string;
  pool: { maxConnections: number; maxIdleConnections: number };
  /** Not MMR keys: bounds on every wait for the database; past one the request gets 503. */
  timeouts: { connectSeconds: number; querySeconds: number; transactionSeconds: number };
}

export interface AccessTokensSection {
  maxCacheTimeSeconds: number;
  useLocalAppserviceConfig: boolean;
  appservices: AppserviceConfig[];
}

export interface UploadsSection {
  maxBytes: number;
  minBytes: number;
  reportedMaxBytes: number;
  maxPending: number;
  maxAgeSeconds: number;
  quotas: QuotasSection;
}

/** One quota rule (MMR's uploads.quotas.users[]); each limit <= 0 means no limit. */
export interface QuotaRule {
  /** User ID pattern; `*` matches any run of characters. */
  glob: string;
  maxBytes: number;
  maxFiles: number;
  /** Overrides uploads.maxPending for matching users; null (not set) keeps it. */
  maxPending: number | null;
}

export interface QuotasSection {
  enabled: boolean;
  /** The first rule whose glob matches the uploader applies; none matching: no quota. */
  users: QuotaRule[];
  /** Not MMR keys (spec v1.18 M_USER_LIMIT_EXCEEDED): where a refused user can read more
   * (empty: https://<serverName>/), and whether they can raise their limit. */
  infoUri: string;
  canUpgrade: boolean;
}

export interface FederationSection {
  /** Consecutive failures (404s excepted) after which a remote server is not asked for a while. */
  backoffAt: number;
  /** Server names whose media is never fetched. */
  ignoredHosts: string[];
  /** CIDRs outbound federation requests may reach even if disallowed (tests: 127.0.0.1/32). */
  allowedNetworks: string[];
  /** CIDRs outbound federation requests may not reach (default: private and reserved ranges). */
  disallowedNetworks: string[];
}

export interface DownloadsSection {
  /** Remote media larger than this is not fetched (502 M_TOO_LARGE). */
  maxBytes: number;
  /** Remote fetches running at once; more wait. */
  numWorkers: number;
  /** How long a failed remote fetch is remembered per mxc. */
  failureCacheMinutes: number;
  /** Open-ended Range requests are not capped by us; kept for MMR compatibility. */
  defaultRangeChunkSizeBytes: number;
  /** Files up to this size are read in one call instead of a stream (small-file fast path). */
  smallFileBytes: number;
  /** Remote media created more than this many days ago is purged hourly; 0 or less keeps it. Process-wide. */
  expireAfterDays: number;
  /** The in-process cache of hot blobs (MMR's downloads.cache). */
  cache: DownloadCacheSection;
}

export interface DownloadCacheSection {
  enabled: boolean;
  /** Bytes of blob content held in memory at most. */
  maxSizeBytes: number;
  /** Larger blobs are never cached. */
  maxFileSizeBytes: number;
  /** The window in which downloads are counted towards admission. */
  trackedMinutes: number;
  /** Downloads within trackedMinutes before a blob is admitted. */
  minDownloads: number;
  /** An admitted blob is not evicted before this age. */
  minCacheTimeSeconds: number;
  /** An evicted blob is not re-admitted within this time. */
  minEvictedTimeSeconds: number;
}

export interface ThumbnailSize {
  width: number;
  height: number;
}

export interface ThumbnailsSection {
  /** Sources larger than this are not thumbnailed (413). MMR declared it; we enforce it. */
  maxSourceBytes: number;
  /** width x height read from the header; larger sources are refused before decoding. */
  maxPixels: number;
  /** Static thumbnail threads; 0 = one per CPU core. The animated pool gets half, at least 1. */
  numWorkers: number;
  sizes: ThumbnailSize[];
  dynamicSizing: boolean;
  allowAnimated: boolean;
  defaultAnimated: boolean;
  /** Animated sources larger than this are thumbnailed as a still (MMR's documented intent). */
  maxAnimateSizeBytes: number;
  /** Where in an animation the still is taken, 0..1. */
  stillFrame: number;
  /** Source MIME types (sniffed from the bytes) that may be thumbnailed. */
  types: string[];
  /** Thumbnails created more than this many days ago are deleted hourly; 0 or less keeps them. Process-wide. */
  expireAfterDays: number;
  /** Animations with more frames are refused (413) before decoding. Not an MMR key. */
  maxFrames: number;
  /** Generate the spec's default sizes in the background after an image upload. Not an MMR key. */
  pregenerate: boolean;
  /** Jobs waiting per pool beyond the running ones; a full queue answers 429. Not an MMR key. */
  maxQueue: number;
}

export interface IdenticonsSection {
  enabled: boolean;
}

/** MMR's quarantine section: what quarantined media answers, and who may quarantine. */
export interface QuarantineSection {
  /** Thumbnails of quarantined media answer a placeholder image instead of 404. */
  replaceThumbnails: boolean;
  /** Downloads of quarantined media answer the placeholder image instead of 404. */
  replaceDownloads: boolean;
  /** A PNG or JPEG served as the placeholder; empty: a built-in one. */
  thumbnailPath: string;
  /** Admins of a homeserver may quarantine that homeserver's media. */
  allowLocalAdmins: boolean;
}

/** MMR's archiving section: GDPR exports and imports of archives (admin API). */
export interface ArchivingSection {
  /** The export and import endpoints work at all. */
  enabled: boolean;
  /** Users may export their own media, and local admins their own server's. */
  selfService: boolean;
  /** A new part starts once the current one holds this many bytes (a part never splits a file). */
  targetBytesPerPart: number;
}

export interface FeatureSupportSection {
  MSC2448: { enabled: boolean; xComponents: number; yComponents: number; punch: number };
}

export interface UrlPreviewsSection {
  enabled: boolean;
  /** Parse threads (piscina); capped at the CPU count. Process-wide. */
  numWorkers: number;
  /** Bytes read of a page (the rest is not fetched) and the largest preview image or file. */
  maxPageSizeBytes: number;
  /** Globs of non-HTML Content-Types previewed as a file (an image becomes the preview image). */
  filePreviewTypes: string[];
  /** Accept-Language sent when the client sends none. */
  defaultLanguage: string;
  numWords: number;
  maxLength: number;
  numTitleWords: number;
  maxTitleLength: number;
  /** Cached previews older than this are purged hourly; 0 keeps them. Process-wide. */
  expireAfterDays: number;
  /** Skips certificate checks only; the address checks always apply. */
  previewUnsafeCertificates: boolean;
  disallowedNetworks: string[];
  allowedNetworks: string[];
  oEmbed: boolean;
  /** A providers.json (oembed.com format) replacing the bundled list; empty = bundled. Not an MMR key. */
  oEmbedProvidersFile: string;
  userAgent: string;
}

export interface MetricsSection {
  /** Serve Prometheus metrics on their own listener (never the public one). */
  enabled: boolean;
  bindAddress: string;
  port: number;
}

export interface RedisShardConfig {
  /** Places the shard on the hash ring: keep it when the address changes so keys stay put. */
  name: string;
  /** host:port, or a redis:// (rediss://) URL. */
  addr: string;
}

export interface RedisSection {
  enabled: boolean;
  databaseNumber: number;
  shards: RedisShardConfig[];
  /** Not an MMR key: blobs larger than this are not cached in Redis (0 turns the cache off). */
  maxCacheObjectBytes: number;
}

/** MMR's rateLimit section (per client: the user, else the IP), plus `exempt` (not MMR). */
export interface RateLimitSection {
  enabled: boolean;
  /** Request bucket refill per second (MMR: whole numbers; fractions accepted here). */
  requestsPerSecond: number;
  /** Request bucket capacity. */
  burst: number;
  buckets: {
    /** Bytes of downloads and thumbnails: a leaky bucket that drains per minute. */
    downloads: { capacityBytes: number; drainBytesPerMinute: number; overflowLimitBytes: number };
  };
  /** Never limited: peers in these CIDRs, and users matching these globs (bridges, appservices). */
  exempt: { cidrs: string[]; users: string[] };
}

/** Not MMR keys: the collector of blobs no row references (left by a crash mid-commit). */
export interface OrphanBlobsSection {
  /** Blobs written less than this long ago are kept (a commit may be on its way). */
  minAgeSeconds: number;
  /** How often one instance of the fleet looks; 0 turns the collector off. */
  intervalSeconds: number;
}

/** Not MMR keys: when the expiry task runs (the expireAfterDays settings and the small-table sweeps). */
export interface ExpirySection {
  /** How often one instance of the fleet runs it (MMR: hourly); 0 turns it off. */
  intervalSeconds: number;
  /** Each run starts up to this many seconds after it is due, at random (MMR: 15 minutes). */
  jitterSeconds: number;
}

export interface TimeoutsSection {
  urlPreviewTimeoutSeconds: number;
  federationTimeoutSeconds: number;
  clientServerTimeoutSeconds: number;
}

/** The keys a per-domain file (top-level `homeserver:`) may override, as MMR allows. */
export const DOMAIN_OVERRIDABLE = [
  'datastores',
  'archiving',
  'uploads',
  'identicons',
  'quarantine',
  'timeouts',
  'featureSupport',
  'accessTokens',
  'downloads',
  'thumbnails',
  'urlPreviews',
] as const;
/** Homeserver fields a per-domain file may set at its top level. */
export const DOMAIN_HOMESERVER_KEYS = ['csApi', 'backoffAt', 'adminApiKind', 'signingKeyPath'] as const;

export interface Config {
  repo: RepoSection;
  database: DatabaseSection;
  homeservers: HomeserverConfig[];
  admins: string[];
  sharedSecretAuth: { enabled: boolean; token: string };
  accessTokens: AccessTokensSection;
  datastores: DatastoreConfig[];
  uploads: UploadsSection;
  downloads: DownloadsSection;
  timeouts: TimeoutsSection;
  thumbnails: ThumbnailsSection;
  identicons: IdenticonsSection;
  quarantine: QuarantineSection;
  archiving: ArchivingSection;
  featureSupport: FeatureSupportSection;
  federation: FederationSection;
  urlPreviews: UrlPreviewsSection;
  metrics: MetricsSection;
  redis: RedisSection;
  rateLimit: RateLimitSection;
  orphanBlobs: OrphanBlobsSection;
  expiry: ExpirySection;
  /** Sections later features implement (thumbnails, urlPreviews, redis, metrics...): kept as given. */
  [section: string]: unknown;
}

/** What a request on one homeserver sees: the global config with that domain's overrides applied. */
export interface DomainConfig {
  homeserver: HomeserverConfig;
  datastores: DatastoreConfig[];
  uploads: UploadsSection;
  downloads: DownloadsSection;
  timeouts: TimeoutsSection;
  accessTokens: AccessTokensSection;
  thumbnails: ThumbnailsSection;
  identicons: IdenticonsSection;
  quarantine: QuarantineSection;
  archiving: ArchivingSection;
  featureSupport: FeatureSupportSection;
  urlPreviews: UrlPreviewsSection;
  [section: string]: unknown;
}

/** A loaded, validated configuration: the global view plus one merged view per homeserver. */
export interface LoadedConfig {
  global: Config;
  domains: Map<string, DomainConfig>;
  /** Files that were read, in merge order (for logs and the watcher). */
  files: string[];
  /** Unknown keys and sections that were accepted but ignored; main.ts logs them at start. */
  warnings?: string[];
  /** Other names (lower case, no port) a configured homeserver answers to: only the
   * embedded-defaults start sets these (127.0.0.1 and [::1] for "localhost"). */
  hostAliases?: Map<string, string>;
}
