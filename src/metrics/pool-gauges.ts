import type { PiscinaHistogram } from '../pools/thumbnails.js';
import type { MediaMetrics } from './media-metrics.js';
import type { ThumbnailPools } from '../pools/thumbnails.js';
import type { PreviewPool } from '../preview/pool.js';
import type { Admission } from '../pools/admission.js';

// Pool depth and task times are read from the pools at scrape time: nothing on the task path
// pays for them. Task times come from piscina's own histograms (milliseconds), as quantiles.

const QUANTILES = [
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.99', 'p99'],
] as const;

function taskTimes(m: MediaMetrics, pool: string, h: PiscinaHistogram): void {
  for (const [phase, summary] of [
    ['run', h.runTime],
    ['wait', h.waitTime],
  ] as const) {
    for (const [q, key] of QUANTILES) {
      const ms = summary[key];
      if (Number.isFinite(ms)) m.poolTaskTime.set({ pool, phase, quantile: q }, ms / 1000);
    }
  }
}

export function watchPools(
  m: MediaMetrics,
  thumbnails: ThumbnailPools,
  previews: PreviewPool,
  previewGate: Admission,
): void {
  m.onScrape.push(() => {
    const stats = thumbnails.stats();
    const times = thumbnails.histograms();
    for (const [pool, s] of Object.entries(stats)) {
      m.poolQueue.set({ pool }, s.queued);
      m.poolRunning.set({ pool }, s.running);
      taskTimes(m, pool, times[pool as keyof typeof times]);
    }
    // A preview holds its gate slot while fetching too: "running" here is previews in flight.
    m.poolQueue.set({ pool: 'preview' }, previewGate.queued + previews.queued);
    m.poolRunning.set({ pool: 'preview' }, previewGate.admitted);
    taskTimes(m, 'preview', previews.histogram);
  });
}
