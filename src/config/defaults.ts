import type { Config, S3DatastoreOpts } from './schema.js';
import { DEFAULT_DENIED_RANGES } from '../net/ip-ranges.js';

// Code defaults. MMR's code defaults unless a reason is given beside the key.
export function defaultConfig(): Config {
  return {
    repo: {
      bindAddress: '127.0.0.1',
      port: 8000,
      logDirectory: '-',
      logColors: false,
      jsonLogs: false,
      logLevel: 'info',
      trustAnyForwardedAddress: false,
      trustedProxies: [],
      useForwardedHost: true,
      freezeUnauthenticatedMedia: true,
      // Load balancers probe every few seconds: 5 s of 503 from /readyz before the listener
      // closes. Grace plus drain stay under the systemd unit's TimeoutStopSec (30 s).
      shutdownGraceSeconds: 5,
      shutdownDrainSeconds: 10,
      // One HTTP thread per core (capped at 16): httpThreadCount in src/pools/thumbnail-threads.cts.
      httpThreads: 0,
    },
    database: {
      postgres: '',
      schema: '',
      embeddedPath: 'data/db',
      pool: { maxConnections: 25, maxIdleConnections: 5 },
      timeouts: { connectSeconds: 10, querySeconds: 30, transactionSeconds: 60 },
    },
    homeservers: [],
    admins: [],
    sharedSecretAuth: { enabled: false, token: 'ReplaceMe' },
    accessTokens: { maxCacheTimeSeconds: 0, useLocalAppserviceConfig: false, appservices: [] },
    datastores: [],
    uploads: {
      maxBytes: 104857600,
      // Not MMR's 100: the spec sets no minimum, and clients (and the Matrix homeserver test
      // suites) upload files of a few bytes. An MMR file that sets 100 still gets 100.
      minBytes: 1,
      reportedMaxBytes: 0,
      maxPending: 5,
      maxAgeSeconds: 1800,
      quotas: { enabled: false, users: [], infoUri: '', canUpgrade: false },
    },
    downloads: {
      maxBytes: 104857600,
      numWorkers: 10,
      failureCacheMinutes: 5,
      defaultRangeChunkSizeBytes: 10485760,
      smallFileBytes: 65536,
      expireAfterDays: 0,
      cache: {
        // On, as in MMR: hot 1 MiB downloads measured 1.05x nginx with it against 0.65-0.70x
        // without (bench download-1mib on a quiet machine; see the README's cache section).
        enabled: true,
        maxSizeBytes: 1048576000,
        maxFileSizeBytes: 104857600,
        trackedMinutes: 30,
        minDownloads: 5,
        minCacheTimeSeconds: 300,
        minEvictedTimeSeconds: 60,
      },
    },
    thumbnails: {
      maxSourceBytes: 10485760,
      maxPixels: 32000000,
      numWorkers: 0,
      sizes: [
        { width: 32, height: 32 },
        { width: 96, height: 96 },
        { width: 320, height: 240 },
        { width: 640, height: 480 },
        { width: 800, height: 600 },
      ],
      dynamicSizing: false,
      allowAnimated: true,
      defaultAnimated: false,
      maxAnimateSizeBytes: 10485760,
      stillFrame: 0.5,
      // Decoders we trust on hostile input (CVE-2024-56515, CVE-2024-53863): no SVG, video or
      // audio unless the operator lists them. HEIC and JPEG XL go to their reference decoders,
      // each run fenced (workers/image/external.ts); without them they answer "cannot thumbnail".
      types: [
        'image/jpeg',
        'image/jpg',
        'image/png',
        'image/apng',
        'image/gif',
        'image/webp',
        'image/avif',
        'image/heif',
        'image/heic',
        'image/jxl',
        'image/tiff',
        'image/bmp',
      ],
      expireAfterDays: 0,
      maxFrames: 1000,
      pregenerate: true,
      maxQueue: 64,
    },
    identicons: { enabled: true },
    quarantine: { replaceThumbnails: true, replaceDownloads: false, thumbnailPath: '', allowLocalAdmins: true },
    archiving: { enabled: true, selfService: false, targetBytesPerPart: 209715200 },
    federation: {
      backoffAt: 20,
      ignoredHosts: [],
      allowedNetworks: [],
      disallowedNetworks: [...DEFAULT_DENIED_RANGES],
    },
    urlPreviews: {
      enabled: true,
      numWorkers: 10,
      maxPageSizeBytes: 10485760,
      filePreviewTypes: ['image/*'],
      defaultLanguage: 'en-US,en',
      numWords: 50,
      maxLength: 200,
      numTitleWords: 30,
      maxTitleLength: 150,
      expireAfterDays: 0,
      previewUnsafeCertificates: false,
      // MMR's list lacked 0.0.0.0/8, the translation prefixes and more (a bypass class); this is
      // the full special-purpose set. MMR's default allow list of 0.0.0.0/0 is not needed: an
      // address matching no deny entry is allowed.
      disallowedNetworks: [...DEFAULT_DENIED_RANGES],
      allowedNetworks: [],
      oEmbed: false,
      oEmbedProvidersFile: '',
      userAgent: 'media-repo',
    },
    metrics: { enabled: false, bindAddress: '127.0.0.1', port: 9000 },
    redis: { enabled: false, databaseNumber: 0, shards: [], maxCacheObjectBytes: 1024 * 1024 },
    featureSupport: {
      MSC2448: { enabled: false, xComponents: 4, yComponents: 3, punch: 1 },
    },
    timeouts: {
      urlPreviewTimeoutSeconds: 10,
      federationTimeoutSeconds: 120,
      clientServerTimeoutSeconds: 30,
    },
    // Off, unlike MMR: its default (1 request/s, burst 10) limited ordinary clients loading a
    // room's media (MMR #610). The bucket sizes are MMR's.
    rateLimit: {
      enabled: false,
      requestsPerSecond: 1,
      burst: 10,
      buckets: {
        downloads: { capacityBytes: 524288000, drainBytesPerMinute: 5242880, overflowLimitBytes: 104857600 },
      },
      exempt: { cidrs: [], users: [] },
    },
    // Far beyond the longest commit (database.timeouts.transactionSeconds); a daily full scan.
    orphanBlobs: { minAgeSeconds: 3600, intervalSeconds: 86400 },
    // MMR's schedule: hourly, each run up to 15 minutes late.
    expiry: { intervalSeconds: 3600, jitterSeconds: 900 },
  };
}

/** An s3 datastore's opts when not given: MMR's defaults, plus our request timeout. */
export function defaultS3Opts(): Omit<S3DatastoreOpts, 'endpoint' | 'bucketName'> {
  return {
    accessKeyId: '',
    accessSecret: '',
    ssl: true,
    region: '',
    storageClass: 'STANDARD',
    tempPath: '',
    publicBaseUrl: '',
    redirectWhenCached: false,
    prefixLength: 0,
    multipartUploads: true,
    // Not an MMR key: how long an S3 request may wait for its answer, or stall, before it fails.
    timeoutSeconds: 30,
  };
}
