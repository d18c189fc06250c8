import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { FederationClient } from '../matrix/federation-client.js';
import { createServerKeyFetcher, type ServerKeyFetcher } from '../matrix/server-keys.js';
import { HomeserverClient } from '../matrix/homeserver.js';
import { TokenCache } from '../cache/tokens.js';
import { AdminStatusCache } from '../cache/admin-status.js';
import { RemoteFetchState } from '../cache/remote-state.js';
import { SingleFlight } from '../cache/singleflight.js';
import type { MediaRow } from '../db/media.js';
import type { ThreadBus } from '../threads/bus.js';

// Start-up step 3, other servers: our homeservers (whoami, with the token cache), other
// homeservers over federation (their keys, fetches coalesced per mxc, backoff per server).

export interface Remote {
  homeserver: HomeserverClient;
  tokens: TokenCache;
  /** Local admin answers, kept as long as tokens (accessTokens.maxCacheTimeSeconds). */
  adminStatus: AdminStatusCache;
  federation: FederationClient;
  serverKeys: ServerKeyFetcher;
  remoteFlights: SingleFlight<MediaRow>;
  remoteState: RemoteFetchState;
}

/** `threads`: the process's other HTTP threads, and whether this is the main one (which alone
 * warns about the config, once for the process). */
export function startRemote(
  config: () => LoadedConfig,
  log: Logger,
  threads: { bus?: ThreadBus; count: number; main: boolean } = { count: 1, main: true },
): Remote {
  const loaded = config();
  const tokens = new TokenCache();
  tokens.configure(loaded.global.accessTokens.maxCacheTimeSeconds);
  const adminStatus = new AdminStatusCache();
  adminStatus.configure(loaded.global.accessTokens.maxCacheTimeSeconds);
  const federation = new FederationClient(() => config().global);
  const serverKeys = createServerKeyFetcher({ fetchKeys: (name) => federation.serverKeys(name), log });
  for (const d of threads.main ? loaded.domains.values() : []) {
    if (!d.homeserver.signingKeyPath) {
      log.warn(
        'no signingKeyPath for this homeserver: remote media is fetched over the legacy unauthenticated endpoint only, which servers that froze their media refuse',
        { homeserver: d.homeserver.name },
      );
    }
  }
  const remoteState = new RemoteFetchState();
  if (threads.bus) remoteState.share(threads.bus, threads.count);
  return {
    homeserver: new HomeserverClient(),
    tokens,
    adminStatus,
    federation,
    serverKeys,
    remoteFlights: new SingleFlight<MediaRow>(),
    remoteState,
  };
}
