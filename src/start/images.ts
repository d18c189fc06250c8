import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { ThumbnailPools, type ImagePools } from '../pools/thumbnails.js';
import type { SharedLocks } from '../threads/shared-locks.js';
import { svgConfigured } from '../pools/svg-loader.js';
import { httpThreadCount, libuvThreadsFor, poolThreads } from '../pools/thumbnail-threads.cjs';
import { ThumbnailRowCache } from '../cache/thumbnail-rows.js';
import { SingleFlight } from '../cache/singleflight.js';
import { FreshThumbnails } from '../cache/fresh-thumbnails.js';
import type { Thumbnail, ThumbnailDeps } from '../pipelines/thumbnail.js';
import { Pregenerator } from '../pipelines/thumbnail-pregenerate.js';
import { identiconCache } from '../pipelines/identicon.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import type { Storage } from './storage.js';
import type { DecoderReport } from '../../workers/protocol.js';

// Start-up step 2, images: the thumbnail, animation and blurhash pools (probed: a broken sharp
// or libvips stops the start with one message), the thumbnail caches and the pre-generator.

export interface Images {
  thumbnails: ImagePools;
  /** The pools themselves: the main thread's (an HTTP thread reaches them through `thumbnails`). */
  ownPools: ThumbnailPools | null;
  thumbnailRows: ThumbnailRowCache;
  thumbnailFlights: SingleFlight<Thumbnail[]>;
  freshThumbnails: FreshThumbnails;
  pregenerator: Pregenerator;
  identicons: ReturnType<typeof identiconCache>;
  /** What the thumbnail pipeline uses. */
  thumbnailDeps: ThumbnailDeps;
  /** Stops pre-generation, waits for thumbnails being stored, closes the pools. */
  close(): Promise<void>;
}

/** Which listed types lack their decoder, per decoder (they then answer "cannot thumbnail"). */
const NEEDS: readonly [keyof DecoderReport['tools'], (type: string) => boolean][] = [
  ['heif-convert', (t) => t === 'image/heic' || t === 'image/heif' || t.endsWith('-sequence')],
  ['djxl', (t) => t === 'image/jxl'],
  ['ffmpeg', (t) => t.startsWith('video/') || t.startsWith('audio/')],
  ['ffprobe', (t) => t.startsWith('audio/')],
];

/** One line for what the external decoders can do here, and a warning per missing one that a listed type needs. */
function logDecoders(log: Logger, d: DecoderReport, types: readonly string[]): void {
  log.info('external decoders', { sandbox: d.sandbox, limits: d.limits, ...d.tools });
  if (!d.limits) {
    log.warn('prlimit (util-linux) does not work here: no external decoder is run (HEIC, JPEG XL, video, audio)');
    return;
  }
  for (const [tool, needs] of NEEDS) {
    const wanted = types.filter(needs);
    if (!d.tools[tool] && wanted.length > 0)
      log.warn(`${tool} is not installed: these thumbnails.types are answered as "cannot thumbnail"`, {
        types: wanted.join(', '),
      });
  }
  if (d.sandbox !== 'bwrap')
    log.warn(
      d.sandbox === 'unshare'
        ? 'external decoders run without network but with the filesystem visible (bubblewrap unavailable)'
        : 'external decoders run without a sandbox (neither bubblewrap nor unshare works here); time and memory limits still apply',
    );
}

/** An HTTP thread's: the main thread's pools, and the locks its threads share. */
export interface ImagesShare {
  pools?: ImagePools & { close(): void };
  locks?: SharedLocks;
}

export async function startImages(
  config: () => LoadedConfig,
  log: Logger,
  metrics: MediaMetrics,
  storage: Storage,
  share: ImagesShare = {},
): Promise<Images> {
  const ownPools = share.pools ? null : await startPools(config, log);
  const thumbnails: ImagePools = share.pools ?? ownPools!;
  const freshThumbnails = new FreshThumbnails();
  const thumbnailDeps: ThumbnailDeps = {
    db: storage.db,
    datastores: storage.datastores,
    log,
    metrics,
    freshThumbnails,
    redis: storage.redis,
    thumbnails,
    thumbnailRows: new ThumbnailRowCache(),
    thumbnailFlights: new SingleFlight<Thumbnail[]>(),
    threadLocks: share.locks,
  };
  const pregenerator = new Pregenerator(thumbnailDeps, log);
  return {
    thumbnails,
    ownPools,
    freshThumbnails,
    pregenerator,
    thumbnailDeps,
    thumbnailRows: thumbnailDeps.thumbnailRows,
    thumbnailFlights: thumbnailDeps.thumbnailFlights,
    identicons: identiconCache(),
    async close() {
      pregenerator.stop();
      await freshThumbnails.drain();
      if (ownPools) await ownPools.close();
      else share.pools!.close();
    },
  };
}

/** The process's image pools, probed: a broken sharp or libvips stops the start here. */
async function startPools(config: () => LoadedConfig, log: Logger): Promise<ThumbnailPools> {
  const g = config().global;
  const threads = poolThreads(g.thumbnails.numWorkers);
  const thumbnails = new ThumbnailPools(threads, g.thumbnails.maxQueue, { svgLoader: () => svgConfigured(config()) });
  try {
    const { vips, decoders } = await thumbnails.probe();
    const uv = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    const wantUv = libuvThreadsFor(threads, httpThreadCount(g.repo.httpThreads));
    logDecoders(log, decoders, config().global.thumbnails.types);
    log.info('image pools ready', {
      vips,
      static: threads.static,
      animated: threads.animated,
      blurhash: threads.blurhash,
      libuvThreads: uv,
    });
    if (uv < wantUv) {
      log.warn(
        'libuv thread pool is smaller than the image pools need; start through the media-repo launcher or set UV_THREADPOOL_SIZE',
        { have: uv, want: wantUv },
      );
    }
  } catch (e) {
    await thumbnails.close().catch(() => undefined);
    throw e;
  }
  return thumbnails;
}
