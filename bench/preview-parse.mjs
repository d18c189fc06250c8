#!/usr/bin/env node
// Standalone: CPU time of the URL-preview worker (dist/workers/preview.js) on hostile pages,
// next to a same-run baseline: htmlparser2's Parser with no bounds and no-op handlers, fed the
// same text. Each figure is the median of --reps runs in this thread (process.cpuUsage, user +
// system), after one warm-up; page bytes are built before the clock starts.
//   node bench/preview-parse.mjs [--depth 100000] [--reps 3] [--no-baseline]
// The baseline is quadratic on the nesting cases: at depth 100000 it takes tens of seconds.
import { parseArgs } from 'node:util';
import { Parser } from 'htmlparser2';
import previewHtml from '../dist/workers/preview.js';

const { values: opt } = parseArgs({
  options: {
    depth: { type: 'string', default: '100000' },
    reps: { type: 'string', default: '3' },
    'no-baseline': { type: 'boolean', default: false },
  },
});
const depth = Number(opt.depth);
const reps = Number(opt.reps);
const limits = { numWords: 50, maxLength: 500, numTitleWords: 30, maxTitleLength: 150 };

const cases = [
  [`${depth} nested <div>`, () => '<title>t</title>' + '<div>'.repeat(depth) + '<p>end</p>'],
  [`${depth} <div> + ${depth} </span>`, () => '<div>'.repeat(depth) + '</span>'.repeat(depth)],
  [`512 <div> + ${2 * depth} </span>`, () => '<div>'.repeat(512) + '</span>'.repeat(2 * depth)],
  ['5 MB of words', () => '<p>' + 'lorem ipsum '.repeat(440_000)],
  ['5 MB one word', () => '<p>' + 'x'.repeat(5_000_000)],
  [`${depth * 2} <img>`, () => '<img src=a.png width=100 height=100>'.repeat(depth * 2)],
  ['1M attributes', () => '<a ' + 'x=y '.repeat(1_000_000) + '>'],
];

function cpuMs(fn) {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function cpuMsAsync(fn) {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function unboundedParse(html) {
  const parser = new Parser({ onopentag() {}, onclosetag() {}, ontext() {} });
  parser.write(html);
  parser.end();
}

console.log(`preview worker vs unbounded htmlparser2, CPU ms (median of ${reps}), node ${process.version}`);
console.log(['case', 'ours', 'truncated', 'baseline'].join('\t'));
for (const [name, build] of cases) {
  const html = build();
  const bytes = new TextEncoder().encode(html);
  const task = () => ({
    op: 'preview-html',
    bytes,
    contentType: 'text/html; charset=utf-8',
    pageUrl: 'https://bench.example/',
    limits,
  });
  const first = await previewHtml(task()); // warm-up
  const ours = [];
  for (let i = 0; i < reps; i++) ours.push(await cpuMsAsync(() => previewHtml(task())));
  let baseline = '-';
  if (!opt['no-baseline']) baseline = cpuMs(() => unboundedParse(html)).toFixed(0); // once: it can take seconds
  console.log([name, median(ours).toFixed(0), first.truncated, baseline].join('\t'));
}
