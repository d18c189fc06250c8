// Turns a parsed YAML document into a typed Config: defaults first, then the operator's values
// over them, then every known key checked. Messages name the key path, the value and what was
// expected (sharp's invalidParameterError style), because a config error is read by a person
// at start-up with nothing else to go on.
import { defaultConfig, defaultS3Opts } from './defaults.js';
import type { Config, DatastoreConfig, HomeserverConfig, S3DatastoreOpts } from './schema.js';
import type { LogLevel } from '../logging/logger.js';
import { mmrS3Opts } from './mmr-s3-opts.js';
import { isUnbuilt, unbuiltWarnings } from './unbuilt.js';
import {
  ConfigError,
  bool,
  checkServerName,
  cidr,
  deepMerge,
  fail,
  fraction,
  httpUrl,
  int,
  isObject,
  listOf,
  mapping,
  num,
  oneOf,
  redisAddr,
  regex,
  seconds,
  section,
  str,
  unique,
  type Check,
} from './checks.js';

export { ConfigError, checkServerName, deepMerge, isObject } from './checks.js';

// MMR takes any string and treats every value but synapse (and dendrite) as matrix.
const adminApiKind: Check = (v, p) =>
  typeof v !== 'string' ? fail(p, 'a string', v) : v === 'synapse' || v === 'dendrite' ? v : 'matrix';

export const checkHomeserver: Check = section(
  {
    name: checkServerName,
    csApi: httpUrl,
    backoffAt: int(0),
    adminApiKind,
    signingKeyPath: str(),
  },
  { backoffAt: 10, adminApiKind: 'matrix', signingKeyPath: '' },
);

const KINDS = ['all', 'local_media', 'remote_media', 'thumbnails', 'archives'];
const datastoreEntry = section(
  {
    type: oneOf('file', 's3'),
    id: str(true),
    enabled: bool,
    forKinds: listOf(oneOf(...KINDS)),
    opts: mapping,
  },
  { enabled: true, forKinds: ['all'], opts: {} },
);

// MMR (minio-go) takes the endpoint as host[:port] and picks the scheme from `ssl`; an
// http(s):// URL has been rewritten to that form by mmrS3Opts (its scheme deciding ssl).
const S3_ENDPOINT = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;
const s3Endpoint: Check = (v, p) =>
  typeof v === 'string' && S3_ENDPOINT.test(v) ? v : fail(p, 'a host[:port], or an http(s):// URL without a path', v);
const emptyOrHttpUrl: Check = (v, p, w) => (v === '' ? v : httpUrl(v, p, w));

const s3OptsSection = section(
  {
    endpoint: s3Endpoint,
    bucketName: str(true),
    accessKeyId: str(),
    accessSecret: str(),
    ssl: bool,
    region: str(),
    storageClass: str(),
    tempPath: str(),
    publicBaseUrl: emptyOrHttpUrl,
    redirectWhenCached: bool,
    // Keys are 64 hex characters; a longer prefix than the key itself means nothing.
    prefixLength: int(0, 64),
    multipartUploads: bool,
    timeoutSeconds: int(1, 3600),
  },
  defaultS3Opts(),
);

const checkS3Opts: Check = (v, p, w) => {
  const o = s3OptsSection(mmrS3Opts(mapping(v, p, w) as Record<string, unknown>, p, w), p, w) as S3DatastoreOpts;
  // Without multipart the whole body must be known before the one PUT: it has to wait somewhere,
  // and memory is not a place for a 100 MiB upload times the number of uploaders.
  if (!o.multipartUploads && o.tempPath === '') {
    fail(`${p}.tempPath`, 'a directory to spool uploads in when multipartUploads is false', o.tempPath);
  }
  return o;
};

const checkDatastore: Check = (v, p, w) => {
  const ds = datastoreEntry(v, p, w) as DatastoreConfig;
  if (ds.type === 's3') ds.opts = checkS3Opts(ds.opts, `${p}.opts`, w) as Record<string, unknown>;
  // The file datastore cannot work without its directory; its other keys are its own business.
  else str(true)(ds.opts.path, `${p}.opts.path`, w);
  return ds;
};

const appservice = section({
  id: str(true),
  asToken: str(true),
  senderUserId: (v, p) =>
    typeof v === 'string' && /^@[^:]+:.+$/.test(v) ? v : fail(p, 'a Matrix user ID like @bot:example.org', v),
  userNamespaces: listOf(section({ regex })),
});

// logrus's level names, as MMR parses them (any case): panic and fatal log errors only here.
const LOG_LEVELS: Record<string, LogLevel> = {
  panic: 'error',
  fatal: 'error',
  error: 'error',
  warn: 'warn',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
  trace: 'trace',
};
const logLevel: Check = (v, p) => {
  const name = typeof v === 'string' ? v.toLowerCase() : '';
  return Object.hasOwn(LOG_LEVELS, name)
    ? LOG_LEVELS[name]
    : fail(p, 'one of panic, fatal, error, warn, info, debug, trace', v);
};

const positive: Check = (v, p) =>
  typeof v === 'number' && v > 0 && Number.isFinite(v) ? v : fail(p, 'a positive number', v);

const SECTIONS: Record<string, Check> = {
  repo: section({
    bindAddress: str(),
    port: int(0, 65535),
    logDirectory: str(),
    logColors: bool,
    jsonLogs: bool,
    logLevel,
    trustAnyForwardedAddress: bool,
    trustedProxies: listOf(cidr),
    useForwardedHost: bool,
    freezeUnauthenticatedMedia: bool,
    shutdownGraceSeconds: seconds(3600),
    shutdownDrainSeconds: seconds(3600),
    httpThreads: int(0, 64),
  }),
  database: section({
    postgres: str(),
    schema: (v, p) => {
      const s = str()(v, p, []) as string;
      if (s !== '' && !/^[a-z_][a-z0-9_]{0,62}$/.test(s))
        fail(p, 'a lower-case SQL identifier (letters, digits, _)', s);
      return s;
    },
    embeddedPath: str(true),
    pool: section({ maxConnections: int(1), maxIdleConnections: int(0) }),
    timeouts: section({ connectSeconds: int(1, 3600), querySeconds: int(1, 86400), transactionSeconds: int(1, 86400) }),
  }),
  homeservers: (v, p, w) => {
    const list = listOf(checkHomeserver)(v, p, w) as HomeserverConfig[];
    unique(list, 'name', p, (s) => s.toLowerCase()); // Host headers compare case-insensitively
    return list;
  },
  admins: listOf(str(true)),
  sharedSecretAuth: (v, p, w) => {
    const s = section({ enabled: bool, token: str() })(v, p, w) as { enabled: boolean; token: string };
    // An enabled empty or sample token would let anyone who read the docs in as an admin.
    if (s.enabled && (s.token === '' || s.token === 'ReplaceMe')) {
      fail(`${p}.token`, 'a secret of your own when sharedSecretAuth is enabled', s.token);
    }
    return s;
  },
  accessTokens: section({
    maxCacheTimeSeconds: int(0),
    useLocalAppserviceConfig: bool,
    appservices: listOf(appservice),
  }),
  datastores: (v, p, w) => {
    const list = listOf(checkDatastore)(v, p, w) as DatastoreConfig[];
    unique(list, 'id', p);
    if (!list.some((d) => d.enabled)) {
      const got = list.length ? `${list.length} datastore(s), none enabled` : 'none';
      throw new ConfigError(`${p}: expected at least one enabled datastore, got ${got}`);
    }
    return list;
  },
  uploads: (v, p, w) => {
    const u = section({
      maxBytes: int(),
      minBytes: int(),
      reportedMaxBytes: int(-1),
      maxPending: int(0),
      maxAgeSeconds: int(1),
      quotas: section({
        enabled: bool,
        // Every limit <= 0 is "no limit" (MMR's docs; its code blocked all uploads at maxBytes 0).
        users: listOf(
          section(
            // maxPending left out keeps uploads.maxPending (null), so a byte rule does not lift it.
            {
              glob: str(true),
              maxBytes: int(),
              maxFiles: int(),
              maxPending: (v, p, w) => (v === undefined ? null : int()(v, p, w)),
            },
            { maxBytes: 0, maxFiles: 0 },
          ),
        ),
        infoUri: emptyOrHttpUrl,
        canUpgrade: bool,
      }),
    })(v, p, w) as { maxBytes: number; minBytes: number };
    if (u.maxBytes > 0 && u.minBytes > u.maxBytes)
      fail(`${p}.minBytes`, `at most uploads.maxBytes (${u.maxBytes})`, u.minBytes);
    return u;
  },
  downloads: section({
    // maxBytes: 0 (or less) is no limit, as in MMR (limits.ts).
    maxBytes: int(),
    numWorkers: int(1, 1024),
    failureCacheMinutes: int(0),
    defaultRangeChunkSizeBytes: int(0),
    smallFileBytes: int(0),
    // 0 or less keeps remote media (MMR).
    expireAfterDays: int(),
    cache: section({
      enabled: bool,
      maxSizeBytes: int(0),
      maxFileSizeBytes: int(0),
      trackedMinutes: int(1),
      minDownloads: int(1),
      minCacheTimeSeconds: int(0),
      minEvictedTimeSeconds: int(0),
    }),
  }),
  federation: section({
    backoffAt: int(1),
    ignoredHosts: listOf(str(true)),
    allowedNetworks: listOf(cidr),
    disallowedNetworks: listOf(cidr),
  }),
  thumbnails: (v, p, w) => {
    const th = section({
      // Byte limits: 0 (or less) is no limit, as in MMR (limits.ts). expireAfterDays: 0 or less keeps.
      maxSourceBytes: int(),
      maxPixels: int(1),
      numWorkers: int(0, 256),
      sizes: listOf(section({ width: int(1, 10000), height: int(1, 10000) })),
      dynamicSizing: bool,
      allowAnimated: bool,
      defaultAnimated: bool,
      maxAnimateSizeBytes: int(),
      stillFrame: fraction,
      types: listOf(str(true)),
      expireAfterDays: int(),
      maxFrames: int(1),
      pregenerate: bool,
      maxQueue: int(0),
    })(v, p, w) as { sizes: unknown[]; types: string[]; maxSourceBytes: number };
    if (th.sizes.length === 0) fail(`${p}.sizes`, 'at least one size', th.sizes);
    if (th.maxSourceBytes <= 0)
      w.push(
        `${p}.maxSourceBytes: ${th.maxSourceBytes} means no limit (as in MMR); each thumbnail job may then hold a whole source in memory`,
      );
    th.types = th.types.map((t) => t.toLowerCase());
    return th;
  },
  urlPreviews: (v, p, w) => {
    const u = section({
      // maxPageSizeBytes: 0 (or less) is no limit, as in MMR (limits.ts). expireAfterDays: 0 or less keeps.
      enabled: bool,
      numWorkers: int(1, 256),
      maxPageSizeBytes: int(),
      filePreviewTypes: listOf(str(true)),
      defaultLanguage: str(true),
      numWords: int(1),
      maxLength: int(1),
      numTitleWords: int(1),
      maxTitleLength: int(1),
      expireAfterDays: int(),
      previewUnsafeCertificates: bool,
      disallowedNetworks: listOf(cidr),
      allowedNetworks: listOf(cidr),
      oEmbed: bool,
      oEmbedProvidersFile: str(),
      userAgent: str(true),
    })(v, p, w) as {
      enabled: boolean;
      disallowedNetworks: string[];
      allowedNetworks: string[];
      maxPageSizeBytes: number;
    };
    // With no list at all every address would be fetchable, loopback and cloud metadata too.
    // MMR's rule for that case: previews are disabled.
    if (u.enabled && u.disallowedNetworks.length === 0 && u.allowedNetworks.length === 0) {
      u.enabled = false;
      w.push(
        `${p}: disallowedNetworks and allowedNetworks are both empty, so URL previews are disabled (as in MMR); set one to enable them`,
      );
    }
    if (u.enabled && u.maxPageSizeBytes <= 0)
      w.push(
        `${p}.maxPageSizeBytes: ${u.maxPageSizeBytes} means no limit (as in MMR); each preview may then hold a whole page in memory`,
      );
    return u;
  },
  identicons: section({ enabled: bool }),
  quarantine: section({
    replaceThumbnails: bool,
    replaceDownloads: bool,
    thumbnailPath: str(),
    allowLocalAdmins: bool,
  }),
  // A part must hold at least one tar block and its header; MMR takes any positive size.
  archiving: section({ enabled: bool, selfService: bool, targetBytesPerPart: int(1024) }),
  metrics: section({ enabled: bool, bindAddress: str(true), port: int(0, 65535) }),
  redis: (v, p, w) => {
    const r = section({
      enabled: bool,
      databaseNumber: int(0),
      maxCacheObjectBytes: int(0, 512 * 1024 * 1024),
      shards: listOf(section({ name: str(true), addr: redisAddr })),
    })(v, p, w) as { enabled: boolean; shards: { name: string }[] };
    unique(r.shards, 'name', `${p}.shards`);
    if (r.enabled && r.shards.length === 0)
      fail(`${p}.shards`, 'at least one shard when redis.enabled is true', r.shards);
    return r;
  },
  featureSupport: section({
    MSC2448: section({ enabled: bool, xComponents: int(1, 9), yComponents: int(1, 9), punch: num }),
  }),
  timeouts: section({
    urlPreviewTimeoutSeconds: int(1),
    federationTimeoutSeconds: int(1),
    clientServerTimeoutSeconds: int(1),
  }),
  rateLimit: section({
    enabled: bool,
    requestsPerSecond: positive,
    burst: int(1),
    buckets: section({
      downloads: section({ capacityBytes: int(1), drainBytesPerMinute: int(0), overflowLimitBytes: int(0) }),
    }),
    exempt: section({ cidrs: listOf(cidr), users: listOf(str(true)) }),
  }),
  // A bound shorter than a commit could take a blob whose row is on its way for an orphan.
  orphanBlobs: section({ minAgeSeconds: int(60), intervalSeconds: int(0) }),
  expiry: section({ intervalSeconds: int(0), jitterSeconds: int(0) }),
};

/** Validates one section (already merged over its defaults); unknown sections pass through. */
export function validateSection(name: string, value: unknown, warnings: string[]): unknown {
  const check = SECTIONS[name];
  return check ? check(value, name, warnings) : value;
}

export function validateConfigWithWarnings(raw: unknown): { config: Config; warnings: string[] } {
  const doc = raw ?? {}; // an empty YAML file parses to undefined
  if (!isObject(doc)) fail('config', 'a mapping of sections', doc);
  const merged = deepMerge(defaultConfig(), doc) as Record<string, unknown>;
  const warnings: string[] = [];
  const out: Record<string, unknown> = { ...merged };
  for (const name of Object.keys(SECTIONS)) out[name] = validateSection(name, merged[name], warnings);
  for (const k of Object.keys(doc)) {
    // MMR's sections not built yet (plugins, sentry...) are kept as given and named by unbuiltWarnings.
    if (!(k in SECTIONS) && !isUnbuilt(k)) warnings.push(`${k}: unknown top-level section, kept as given`);
  }
  warnings.push(...unbuiltWarnings(doc));
  return { config: out as Config, warnings };
}

export function validateConfig(raw: unknown): Config {
  return validateConfigWithWarnings(raw).config;
}
