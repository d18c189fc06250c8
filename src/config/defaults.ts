import type { Config } from './schema.js';

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
      useForwardedHost: true,
      freezeUnauthenticatedMedia: true,
    },
    database: {
      postgres: '',
      embeddedPath: 'data/db',
      pool: { maxConnections: 25, maxIdleConnections: 5 },
    },
    homeservers: [],
    admins: [],
    sharedSecretAuth: { enabled: false, token: 'ReplaceMe' },
    accessTokens: { maxCacheTimeSeconds: 0, useLocalAppserviceConfig: false, appservices: [] },
    datastores: [],
    uploads: {
      maxBytes: 104857600,
      minBytes: 100,
      reportedMaxBytes: 0,
      maxPending: 5,
      maxAgeSeconds: 1800,
    },
    downloads: {
      defaultRangeChunkSizeBytes: 10485760,
      smallFileBytes: 65536,
    },
    timeouts: {
      urlPreviewTimeoutSeconds: 10,
      federationTimeoutSeconds: 120,
      clientServerTimeoutSeconds: 30,
    },
  };
}
