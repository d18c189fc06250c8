// The end-of-run report of bench/run.mjs: one markdown file, one JSON file with every
// scenario's common figures (see figures.mjs) and its full summary, and a PNG chart, all named
// after the run's start time so runs on the same day do not overwrite each other.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { machineInfo, getResultsDir } from './report.mjs';
import { figuresOf } from './figures.mjs';

const COLS = [
  ['reqPerSec', 'req/s'],
  ['mibPerSec', 'MiB/s'],
  ['p50Ms', 'p50 ms'],
  ['p99Ms', 'p99 ms'],
  ['errors', 'errors'],
  ['peakRssMiB', 'peak RSS MiB'],
];
const cell = (x) => (x === null || x === undefined ? '–' : String(x));

function markdown(doc) {
  const lines = [
    `# media-repo bench, ${doc.date}`,
    '',
    `${doc.machine.cpus} cores (${doc.machine.cpuModel}), node ${doc.machine.node}, nginx ${doc.machine.nginx ?? '–'}, load average at start ${doc.machine.loadavgAtStart.join(' ')}.`,
    `Target: ${doc.target}; database: ${doc.database}; ${doc.reps} rep(s) x ${doc.durationS} s${doc.smoke ? ' (--smoke: tiny bounds, figures not meaningful)' : ''}.`,
    '',
    `| scenario | side | ${COLS.map(([, h]) => h).join(' | ')} | ratio |`,
    `| --- | --- | ${COLS.map(() => '---:').join(' | ')} | ---: |`,
  ];
  for (const s of doc.scenarios) {
    const row = (side, f, r) => `| ${s.name} | ${side} | ${COLS.map(([k]) => cell(f[k])).join(' | ')} | ${cell(r)} |`;
    lines.push(row('ours', s.ours, s.ratio));
    if (s.baseline) lines.push(row(s.baselineLabel ?? 'baseline', s.baseline, null));
  }
  if (doc.skipped.length) lines.push('', `Skipped: ${doc.skipped.map((k) => `${k.name} (${k.why})`).join('; ')}.`);
  if (doc.failed.length) lines.push('', `Failed: ${doc.failed.map((k) => `${k.name}: ${k.error}`).join('; ')}.`);
  lines.push(
    '',
    'Ratio: ours/baseline on throughput (higher is better; remote-cold: direct time over ours).',
    'The load generator shares the machine with the servers: read ratios rather than absolute figures.',
    '',
    `![throughput and latency](${doc.files.png.split('/').pop()})`,
    '',
  );
  return lines.join('\n');
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/**
 * Two panels (throughput, then p99 latency, p50 where no p99), one pair of bars per scenario:
 * ours and its baseline. Scenarios measure different units, so each pair is scaled to its own
 * larger bar and the values are written on the bars.
 */
export function chartSvg(scenarios) {
  const W = Math.max(480, 80 + scenarios.length * 110);
  const PH = 220;
  const panels = [
    {
      title: 'throughput (req/s, or MiB/s where marked)',
      value: (f) => f?.reqPerSec ?? f?.mibPerSec,
      unit: (f) => (f?.reqPerSec == null && f?.mibPerSec != null ? ' MiB/s' : ''),
    },
    {
      title: 'latency (p99 ms, or p50 where marked)',
      value: (f) => f?.p99Ms ?? f?.p50Ms,
      unit: (f) => (f?.p99Ms == null && f?.p50Ms != null ? ' p50' : ''),
    },
  ];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${40 + panels.length * (PH + 40)}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<rect x="${W - 200}" y="8" width="10" height="10" fill="#2b6cb0"/><text x="${W - 185}" y="17">media-repo</text>`,
    `<rect x="${W - 110}" y="8" width="10" height="10" fill="#a0aec0"/><text x="${W - 95}" y="17">baseline</text>`,
  ];
  panels.forEach((p, pi) => {
    const top = 40 + pi * (PH + 40);
    const base = top + PH - 30;
    out.push(
      `<text x="10" y="${top}" font-size="13" font-weight="bold">${esc(p.title)}</text>`,
      `<line x1="40" y1="${base}" x2="${W - 10}" y2="${base}" stroke="black"/>`,
    );
    scenarios.forEach((s, i) => {
      const x = 50 + i * 110;
      const pair = [
        [s.ours, '#2b6cb0'],
        [s.baseline, '#a0aec0'],
      ];
      const max = Math.max(...pair.map(([f]) => p.value(f) ?? 0));
      pair.forEach(([f, color], j) => {
        const v = p.value(f);
        if (v == null) return;
        const h = max > 0 ? Math.max(1, (v / max) * (PH - 60)) : 1;
        out.push(
          `<rect x="${x + j * 45}" y="${base - h}" width="40" height="${h}" fill="${color}"/>`,
          `<text x="${x + j * 45 + 20}" y="${base - h - 3}" text-anchor="middle" font-size="9">${esc(`${v}${p.unit(f)}`)}</text>`,
        );
      });
      out.push(`<text x="${x + 42}" y="${base + 14}" text-anchor="middle">${esc(s.name)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

/**
 * Writes report-<stamp>.{md,json,png} into the results dir (bench/results/ unless moved); returns their paths.
 * results: { scenario: summary }; meta: { target, database, reps, durationS, smoke, skipped, failed, startedAt }.
 */
export async function writeSuiteReport(results, meta, dir = getResultsDir()) {
  mkdirSync(dir, { recursive: true });
  const stamp = meta.startedAt.toISOString().replace(/:/g, '-').replace(/\..*/, '');
  const base = join(dir, `report-${stamp}`);
  const files = { md: `${base}.md`, json: `${base}.json`, png: `${base}.png` };
  const scenarios = Object.entries(results).map(([name, summary]) => ({ name, ...figuresOf(name, summary), summary }));
  const doc = {
    date: meta.startedAt.toISOString(),
    machine: machineInfo(),
    target: meta.target,
    database: meta.database,
    reps: meta.reps,
    durationS: meta.durationS,
    smoke: !!meta.smoke,
    skipped: meta.skipped ?? [],
    failed: meta.failed ?? [],
    files,
    scenarios,
  };
  writeFileSync(files.json, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(files.md, markdown(doc));
  // The chart is our own SVG: let libvips load it even where VIPS_BLOCK_UNTRUSTED is set (npm test
  // sets it for the server's sake, and the bench smoke test inherits it).
  sharp.unblock({ operation: ['VipsForeignLoadSvgBuffer'] });
  await sharp(Buffer.from(chartSvg(scenarios)))
    .png()
    .toFile(files.png);
  return files;
}
