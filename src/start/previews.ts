import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { StoredPreview } from '../db/url-previews.js';
import { SingleFlight } from '../cache/singleflight.js';
import { Admission } from '../pools/admission.js';
import type { ImagePools } from '../pools/thumbnails.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import { PreviewPool, type PreviewParser } from '../preview/pool.js';
import { PreviewResults } from '../preview/results-cache.js';
import { providersLoader } from '../preview/providers-loader.js';
import { poolIdentify, poolBlurhash } from '../preview/identify.js';
import type { PreviewDeps } from '../preview/pipeline.js';
import type { Storage } from './storage.js';
import type { SharedLocks } from '../threads/shared-locks.js';

// Start-up step 4, URL previews: the parse pool, the gate in front of it, the result cache and
// the oEmbed providers (a broken providers file stops the start, not the first preview).

export interface Previews {
  deps: PreviewDeps;
  /** The process's parse pool and gate: the main thread's (null on an HTTP thread, whose
   * previews reach them through `share`). */
  pool: PreviewPool | null;
  gate: Admission | null;
  close(): Promise<void>;
}

/** An HTTP thread's: the main thread's parse pool and its gate. */
export interface PreviewsShare {
  parser?: PreviewParser;
  gate?: Pick<Admission, 'enter' | 'leave'>;
  locks?: SharedLocks;
}

export function startPreviews(
  config: () => LoadedConfig,
  log: Logger,
  metrics: MediaMetrics,
  storage: Storage,
  thumbnails: ImagePools,
  share?: PreviewsShare,
): Previews {
  const g = config().global;
  const pool = share?.parser ? null : new PreviewPool(g.urlPreviews.numWorkers);
  // numWorkers previews in flight, each holding at most one page; a bounded line behind.
  const gate = share?.gate
    ? null
    : new Admission(g.urlPreviews.numWorkers, g.urlPreviews.numWorkers * 16, 'URL preview');
  const providers = providersLoader(() => config().global.urlPreviews, log);
  try {
    providers();
  } catch (e) {
    void pool?.close();
    throw e;
  }
  const deps: PreviewDeps = {
    db: storage.db,
    datastores: storage.datastores,
    pool: share?.parser ?? pool!,
    gate: share?.gate ?? gate!,
    threadLocks: share?.locks,
    metrics,
    log,
    config,
    flights: new SingleFlight<StoredPreview>(),
    results: new PreviewResults(),
    providers,
    identifyImage: poolIdentify(thumbnails, () => config().global.thumbnails),
    blurhashImage: poolBlurhash(thumbnails),
  };
  return { deps, pool, gate, close: () => pool?.close() ?? Promise.resolve() };
}
