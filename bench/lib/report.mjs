// Medians, tables on stdout, and small JSON records under bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { ROOT } from './repo.mjs';
import { commandVersion } from './proc.mjs';

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export const round = (x, d = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d;
export const ratio = (a, b) => (a && b ? round(a / b, 2) : null);

/** Prints rows (arrays of cells) as an aligned table. */
export function printTable(title, header, rows) {
  const cells = [header, ...rows].map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(cells[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r));
}

let machine;
export function machineInfo() {
  machine ??= {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memGiB: round(os.totalmem() / 2 ** 30, 1),
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
    node: process.version,
    nginx: commandVersion('nginx', ['-v'], /nginx\/(\S+)/),
    wrk: commandVersion('wrk', ['--version'], /wrk (\S+)/),
    kernel: os.release(),
  };
  return machine;
}

const stamp = () => new Date().toISOString().slice(0, 10);

// Where result files go; run.mjs --results moves them (the smoke test writes to a temp dir).
let resultsDir = join(ROOT, 'bench', 'results');
export const setResultsDir = (dir) => (resultsDir = dir);
export const getResultsDir = () => resultsDir;

/** Writes bench/results/<scenario>-<date>[-suffix].json; returns its path. */
export function writeResult(scenario, record, suffix = '') {
  const dir = resultsDir;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${scenario}-${stamp()}${suffix ? `-${suffix}` : ''}.json`);
  const doc = { scenario, date: new Date().toISOString(), machine: machineInfo(), ...record };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  return file;
}

export const SHARED_CORES_NOTE =
  `note: the load generator, media-repo and nginx share this machine's ${os.cpus().length} cores; ` +
  'that holds for both sides of every ratio, but absolute figures are lower than on a dedicated box.';
