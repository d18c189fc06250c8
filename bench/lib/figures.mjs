// Every scenario returns its own summary shape (they measure different things); the suite
// report needs the same few figures from each, so this maps one shape to
// { unit, ours: FIG, baseline: FIG | null, baselineLabel, ratio } with
// FIG = { reqPerSec, mibPerSec, p50Ms, p99Ms, errors, peakRssMiB } (null where not measured).
// ratio is ours/baseline on throughput, so higher is better everywhere.
import { ratio, round } from './report.mjs';

const fig = (f = {}) => ({
  reqPerSec: null,
  mibPerSec: null,
  p50Ms: null,
  p99Ms: null,
  errors: null,
  peakRssMiB: null,
  ...f,
});

/** Figures of a download-style summary: { variants: { nginx?, legacy?, authed } }. */
function loadVariants(s) {
  const v = s.variants;
  const one = (x) =>
    x &&
    fig({
      reqPerSec: x.reqPerSec,
      mibPerSec: x.payloadMiBPerSec,
      p50Ms: x.latencyP50Ms ?? null,
      p99Ms: x.latencyP99Ms,
      errors: x.failures,
      peakRssMiB: x.peakRssMiB ?? null,
    });
  const ours = one(v.authed ?? v.legacy);
  return {
    unit: 'req/s',
    ours,
    baseline: one(v.nginx),
    baselineLabel: 'nginx',
    ratio: ratio(ours.reqPerSec, v.nginx?.reqPerSec),
  };
}

/** Throughput of a single timed transfer of `mib` MiB taking `ms`. */
const mibPerSec = (mib, ms) => (ms ? round(mib / (ms / 1000), 1) : null);

const MAPPERS = {
  'upload-1gib-rss': (s) => ({
    unit: 'MiB/s',
    baselineLabel: 'nginx PUT',
    ratio: s.ratioThroughput,
    ours: fig({
      mibPerSec: s.ours.mibPerSec,
      errors: s.ours.allOk ? 0 : 1,
      peakRssMiB: s.ours.baselineRssMiB === null ? null : round(s.ours.baselineRssMiB + (s.ours.peakGrowthMiB ?? 0), 1),
    }),
    baseline: s.nginx ? fig({ mibPerSec: s.nginx.mibPerSec }) : null,
  }),
  'upload-concurrent': (s) => ({
    unit: 'MiB/s',
    baselineLabel: 'nginx PUT',
    ratio: s.ratio,
    ours: fig({ mibPerSec: s.ours.mibPerSec, errors: s.ours.failures }),
    baseline: s.nginx ? fig({ mibPerSec: s.nginx.mibPerSec, errors: s.nginx.failures }) : null,
  }),
  'download-1kib': loadVariants,
  'download-1mib': loadVariants,
  'download-cold': (s) => {
    const one = (x) =>
      x &&
      fig({
        reqPerSec: x.reqPerSec,
        mibPerSec: x.payloadMiBPerSec,
        p50Ms: x.latencyP50Ms,
        p99Ms: x.latencyP99Ms,
        errors: x.failures,
        peakRssMiB: x.peakRssMiB,
      });
    return {
      unit: 'req/s',
      ours: one(s.variants.ours),
      baseline: one(s.variants.nginx),
      baselineLabel: 'nginx',
      ratio: s.variants.ours.ratioToNginx ?? null,
    };
  },
  // The report has one row per scenario: the 1 MiB size (1 KiB and 100 MiB are in its table),
  // or the first size measured when --sizes left 1 MiB out.
  'upload-sizes': (s) => {
    const m = s.sizes['1 MiB'] ?? Object.values(s.sizes)[0];
    const one = (x) =>
      x &&
      fig({
        reqPerSec: x.perSec,
        mibPerSec: x.mibPerSec,
        p50Ms: x.p50Ms,
        p99Ms: x.p99Ms,
        errors: x.errors,
        peakRssMiB: x.peakRssMiB ?? null,
      });
    return {
      unit: 'uploads/s',
      ours: one(m.ours),
      baseline: one(m.shell),
      baselineLabel: 'sha256sum + cp',
      ratio: m.ratio,
    };
  },
  'thumb-cached': loadVariants,
  'thumb-uncached': (s) => {
    const one = (x) =>
      x && fig({ reqPerSec: x.perSec, p50Ms: x.p50Ms, p99Ms: x.p99Ms, errors: x.failures, peakRssMiB: x.peakRssMiB });
    return {
      unit: 'req/s',
      ours: one(s.variants.ours),
      baseline: one(s.variants.sharp),
      baselineLabel: 'plain sharp',
      ratio: s.ratioToSharp,
    };
  },
  'thumb-animated': (s) => {
    const one = (x) =>
      x &&
      fig({
        reqPerSec: x.p50Ms ? round(1000 / x.p50Ms, 2) : null,
        p50Ms: x.p50Ms,
        errors: x.failures,
        peakRssMiB: x.peakRssMiB,
      });
    return {
      unit: 'req/s',
      ours: one(s.variants.ours),
      baseline: one(s.variants.sharp),
      baselineLabel: 'plain sharp',
      ratio: s.speedRatioToSharp,
    };
  },
  'remote-cold': (s) => ({
    unit: 'MiB/s',
    baselineLabel: 'direct from A',
    ours: fig({
      mibPerSec: mibPerSec(s.sizeMiB, s.remote.totalMs),
      p50Ms: s.remote.totalMs,
      errors: 0,
      peakRssMiB: s.peakRssMiBofB ?? null,
    }),
    baseline: fig({ mibPerSec: mibPerSec(s.sizeMiB, s.direct.totalMs), p50Ms: s.direct.totalMs, errors: 0 }),
    ratio: ratio(s.direct.totalMs, s.remote.totalMs),
  }),
  'preview-uncached': (s) => ({
    unit: 'req/s',
    baselineLabel: `parse floor x ${s.threads} threads`,
    ratio: s.uncached.ratioToFloor,
    ours: fig({
      reqPerSec: s.uncached.previewsPerS,
      p50Ms: s.uncached.p50Ms,
      p99Ms: s.uncached.p99Ms,
      errors: s.uncached.errors,
      peakRssMiB: s.uncached.peakRssMiB ?? null,
    }),
    baseline: fig({ reqPerSec: round(s.parseFloorPerThread * s.threads, 1) }),
  }),
  'preview-cached': (s) => ({
    unit: 'req/s',
    baselineLabel: null,
    ratio: null,
    baseline: null,
    ours: fig({
      reqPerSec: s.cached.reqPerS,
      p50Ms: s.cached.p50Ms,
      p99Ms: s.cached.p99Ms,
      errors: (s.cached.non2xx || 0) + (s.cached.errors || 0),
    }),
  }),
  mixed: (s) => ({
    unit: 'req/s',
    baselineLabel: null,
    ratio: null,
    baseline: null,
    ours: fig({
      reqPerSec: s.reqPerSec,
      mibPerSec: s.mibPerSec,
      p50Ms: s.p50Ms,
      p99Ms: s.p99Ms,
      errors: s.errors,
      peakRssMiB: s.peakRssMiB,
    }),
  }),
  // A sizing measurement, not a throughput: the report shows its errors and the largest RSS
  // it saw (idle plus the biggest step); the figures themselves are in its own table.
  'memory-sizing': (s) => ({
    unit: 'MiB',
    baselineLabel: null,
    ratio: null,
    baseline: null,
    ours: fig({
      errors: s.failures,
      peakRssMiB: round(
        s.idleRssMiB +
          Math.max(
            s.cache.rssGrowthMiB,
            s.slowDownloads.peakGrowthMiB,
            s.uploads.peakGrowthMiB,
            s.thumbnails.peakGrowthMiB,
          ),
        1,
      ),
    }),
  }),
  // Rows purged per second (in the req/s column) and the process's peak RSS.
  'purge-100k': (s) => purgeFigures(s),
  'expiry-100k': (s) => purgeFigures(s),
};

function purgeFigures(s) {
  return {
    unit: 'rows/s',
    baselineLabel: null,
    ratio: null,
    baseline: null,
    ours: fig({ reqPerSec: s.rowsPerSec, errors: s.failures, peakRssMiB: round(s.idleRssMiB + s.peakGrowthMiB, 1) }),
  };
}

/** The common figures of scenario `name`'s summary (a scenario unknown here gets ours only). */
export function figuresOf(name, summary) {
  const map = MAPPERS[name];
  if (!map) return { unit: null, ours: fig(), baseline: null, baselineLabel: null, ratio: null };
  return map(summary);
}
