// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per file.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './repo.mjs';

function short(url) {
  if (!url) return '';
  const p = url.replace(/^file:\/\//, '');
  return p.startsWith(ROOT) ? relative(ROOT, p) : p.replace(/.*node_modules\//, 'node_modules/');
}

export function summariseProfile(file, top = 20) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const dt = prof.timeDeltas.reduce((a, b) => a + b, 0) / prof.samples.length; // µs per sample
  const byFn = new Map();
  const byFile = new Map();
  let total = 0;
  for (const n of prof.nodes) {
    if (!n.hitCount || n.callFrame.functionName === '(idle)') continue; // percentages of busy time
    total += n.hitCount;
    const cf = n.callFrame;
    const fn = `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + n.hitCount);
    const f = short(cf.url) || cf.functionName;
    byFile.set(f, (byFile.get(f) ?? 0) + n.hitCount);
  }
  const pct = (x) => `${((x / total) * 100).toFixed(1)}%`;
  const fns = [...byFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => ({ fn: k, selfPct: pct(v), selfMs: Math.round((v * dt) / 1000) }));
  const files = [...byFile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => ({ file: k, selfPct: pct(v) }));
  return { file, totalMs: Math.round((total * dt) / 1000), functions: fns, files };
}

export function printProfiles(dir) {
  let files = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    /* none */
  }
  for (const f of files) {
    const s = summariseProfile(join(dir, f));
    console.log(`\nCPU profile ${s.file} (${s.totalMs} ms busy), top functions by self time, % of busy time:`);
    for (const x of s.functions) console.log(`  ${x.selfPct.padStart(6)} ${String(x.selfMs).padStart(7)} ms  ${x.fn}`);
    console.log('by file:');
    for (const x of s.files) console.log(`  ${x.selfPct.padStart(6)}  ${x.file}`);
  }
  return files.map((f) => join(dir, f));
}
