#!/usr/bin/env node
// URL previews: a fixture site (in this process) serves a 200 KB article page under endless
// distinct URLs; media-repo previews them.
//   preview-uncached: previews per second of never-seen URLs (fetch, parse on the pool, cache
//                     row), with the server's event-loop responsiveness measured meanwhile by
//                     a /healthz probe every 10 ms (its latency bounds the loop's delay; the
//                     same probe on the idle server is the baseline).
//   preview-cached:   req/s of one cached preview under autocannon.
// Baseline for the parse work: the same worker function parsing the same page in a loop on one
// thread of this process (the floor per page), times the server's parse threads.
//
//   node bench/preview.mjs [--seconds 10] [--concurrency 8] [--threads 2] [--postgres DSN]
import { parseArgs } from 'node:util';
import http from 'node:http';
import { join } from 'node:path';
import { ROOT, ensureBuilt, startOurRepo } from './lib/repo.mjs';
import { installCleanup, stopAll, cpuSeconds } from './lib/proc.mjs';
import { runAutocannon } from './lib/load.mjs';
import { percentile } from './lib/images.mjs';
import { machineInfo, printTable, ratio, round, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    postgres: { type: 'string', default: '' },
  },
});
const seconds = Number(opt.seconds);
const concurrency = Number(opt.concurrency);
const threads = Number(opt.threads);

ensureBuilt();
installCleanup();

/** A 200 KB news-article page: og tags in the head, nested layout, scripts, many paragraphs. */
function articlePage(n) {
  const words = 'matrix media repository preview federation thumbnail stream cache room message'.split(' ');
  let x = 7 + n;
  const word = () => words[(x = (x * 1103515245 + 12345) & 0x7fffffff) % words.length];
  const para = () => `<p class="body">${Array.from({ length: 60 }, word).join(' ')} <a href="/a/${x % 1000}">link</a>.</p>`;
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Article ${n}</title>
<meta property="og:title" content="Article number ${n}: a long headline about media"><meta property="og:type" content="article">
<meta property="og:description" content="${Array.from({ length: 40 }, word).join(' ')}"><meta property="og:site_name" content="Bench News">
<script>${'var a=1;'.repeat(2000)}</script><style>${'.c{color:red}'.repeat(1000)}</style></head><body>`;
  let body = '<header><nav><ul>' + '<li><a href="/x">Section</a></li>'.repeat(40) + '</ul></nav></header><main><article>';
  while (head.length + body.length < 200 * 1024) body += `<div class="row"><div class="col"><section>${para()}${para()}</section></div></div>`;
  return Buffer.from(`${head}${body}</article></main><footer>footer</footer></body></html>`);
}

const PAGE = articlePage(1);
const site = http.createServer((req, res) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE));
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const sitePort = site.address().port;

/** The parse floor: the worker's own function, one thread, this process. */
async function parseFloor() {
  const { default: parse } = await import(join(ROOT, 'dist', 'workers', 'preview.js'));
  const limits = { numWords: 50, maxLength: 200, numTitleWords: 30, maxTitleLength: 150 };
  const task = () => ({ op: 'preview-html', bytes: new Uint8Array(PAGE), contentType: 'text/html; charset=utf-8', pageUrl: 'http://x/', limits });
  for (let i = 0; i < 20; i++) await parse(task());
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 3000) {
    await parse(task());
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

function get(url, headers) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    }).on('error', reject);
  });
}

/** /healthz latencies every 10 ms until stop(); the server answers it on its event loop. */
function probe(url) {
  const samples = [];
  let on = true;
  (async () => {
    while (on) {
      const r = await get(`${url}/healthz`, {});
      samples.push(r.ms);
      await new Promise((r2) => setTimeout(r2, 10));
    }
  })();
  return {
    stop() {
      on = false;
      const s = [...samples].sort((a, b) => a - b);
      return { n: s.length, p50: round(percentile(s, 50), 2), p99: round(percentile(s, 99), 2), max: round(s.at(-1), 2) };
    },
  };
}

let failed = false;
try {
  const m = machineInfo();
  console.log(`preview bench: ${m.cpus} cores (${m.cpuModel}), node ${m.node}; page ${PAGE.length} bytes; ${seconds} s, ${concurrency} concurrent, ${threads} parse threads`);
  const floor = await parseFloor();
  console.log(`  parse floor (one thread, in process): ${round(floor)} pages/s`);
  const workDir = join(ROOT, 'bench', '.work', `preview-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const repo = await startOurRepo(workDir, {
    postgres: opt.postgres,
    overrides: ['urlPreviews.allowedNetworks=["127.0.0.1/32"]', `urlPreviews.numWorkers=${threads}`],
  });
  const headers = { host: repo.host, authorization: `Bearer ${repo.token}` };
  const previewUrl = (target) => `${repo.url}/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(target)}`;
  const first = await get(previewUrl(`http://127.0.0.1:${sitePort}/warm`), headers);
  if (first.status !== 200) throw new Error(`preview answered ${first.status}`);

  const idle = probe(repo.url);
  await new Promise((r) => setTimeout(r, 2000));
  const idleLoop = idle.stop();

  // Uncached: every request a new URL.
  let next = 0;
  let done = 0;
  let errors = 0;
  const loop = probe(repo.url);
  const until = performance.now() + seconds * 1000;
  const { cpu } = await withServerCpu(repo.pid, () => Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const r = await get(previewUrl(`http://127.0.0.1:${sitePort}/p/${next++}`), headers);
      if (r.status === 200) done++;
      else errors++;
    }
  })));
  const busyLoop = loop.stop();
  const uncachedRate = done / seconds;

  // Cached: one URL, already stored.
  const cached = await runAutocannon({ url: previewUrl(`http://127.0.0.1:${sitePort}/warm`), headers, connections: 32, durationS: seconds });

  const summary = {
    pageBytes: PAGE.length, threads, concurrency,
    parseFloorPerThread: round(floor),
    uncached: { previewsPerS: round(uncachedRate), errors, serverCpuS: round(cpu, 1), ratioToFloor: ratio(uncachedRate, floor * threads) },
    loopProbeIdleMs: idleLoop, loopProbeWhileParsingMs: busyLoop,
    cached: { reqPerS: round(cached.reqPerSec), p99Ms: cached.latencyP99, non2xx: cached.non2xx, errors: cached.errors },
  };
  printTable('preview-uncached (200 KB page, every URL new)', ['figure', 'value', 'ratio'], [
    ['previews/s', summary.uncached.previewsPerS, `${summary.uncached.ratioToFloor} of ${threads} x the one-thread parse floor (${summary.parseFloorPerThread}/s)`],
    ['errors', errors, ''],
    ['/healthz probe p50 / p99 / max ms while parsing', `${busyLoop.p50} / ${busyLoop.p99} / ${busyLoop.max}`, `idle: ${idleLoop.p50} / ${idleLoop.p99} / ${idleLoop.max}`],
  ]);
  printTable('preview-cached (one URL, autocannon c32)', ['figure', 'value'], [['req/s', summary.cached.reqPerS], ['p99 ms', summary.cached.p99Ms]]);
  console.log(SHARED_CORES_NOTE);
  writeResult('preview', { scenario: 'preview', date: new Date().toISOString(), machine: m, seconds, summary }, opt.postgres ? 'postgres' : '');
  await repo.stop();
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  site.close();
  await stopAll();
}
process.exit(failed ? 1 : 0);

async function withServerCpu(pid, fn) {
  const before = cpuSeconds([pid]);
  await fn();
  return { cpu: cpuSeconds([pid]) - before };
}
