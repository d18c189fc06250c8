#!/usr/bin/env node
// URL previews: a fixture site (in this process) serves a 200 KB article page under endless
// distinct URLs; media-repo previews them.
//   preview-uncached: previews per second of never-seen URLs (fetch, parse on the pool, cache
//                     row), with the server's own event-loop delay over the run (its
//                     nodejs_eventloop_lag_* metrics, scraped from the metrics listener just
//                     before and after: the histogram restarts at each scrape); the same
//                     figures over 2 s of the idle server are the baseline.
//   preview-cached:   req/s of one cached preview under autocannon.
// Baseline for the parse work: the same worker function parsing the same page in a loop on one
// thread of this process (the floor per page), times the server's parse threads.
//
//   node bench/preview.mjs [--seconds 10] [--concurrency 8] [--threads 2] [--postgres DSN]
//   npm run bench -- preview          (both, as scenarios of bench/run.mjs)
import { parseArgs } from 'node:util';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, ensureBuilt, startOurRepo } from './lib/repo.mjs';
import { startRssSampler } from './lib/rss.mjs';
import { installCleanup, stopAll, cpuSeconds, freePort } from './lib/proc.mjs';
import { runAutocannon } from './lib/load.mjs';
import { machineInfo, printTable, ratio, round, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

export const PREVIEW_SCENARIOS = ['preview-uncached', 'preview-cached'];

/** A 200 KB news-article page: og tags in the head, nested layout, scripts, many paragraphs. */
function articlePage(n) {
  const words = 'matrix media repository preview federation thumbnail stream cache room message'.split(' ');
  let x = 7 + n;
  const word = () => words[(x = (x * 1103515245 + 12345) & 0x7fffffff) % words.length];
  const para = () =>
    `<p class="body">${Array.from({ length: 60 }, word).join(' ')} <a href="/a/${x % 1000}">link</a>.</p>`;
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Article ${n}</title>
<meta property="og:title" content="Article number ${n}: a long headline about media"><meta property="og:type" content="article">
<meta property="og:description" content="${Array.from({ length: 40 }, word).join(' ')}"><meta property="og:site_name" content="Bench News">
<script>${'var a=1;'.repeat(2000)}</script><style>${'.c{color:red}'.repeat(1000)}</style></head><body>`;
  let body =
    '<header><nav><ul>' + '<li><a href="/x">Section</a></li>'.repeat(40) + '</ul></nav></header><main><article>';
  while (head.length + body.length < 200 * 1024)
    body += `<div class="row"><div class="col"><section>${para()}${para()}</section></div></div>`;
  return Buffer.from(`${head}${body}</article></main><footer>footer</footer></body></html>`);
}

const PAGE = articlePage(1);

/** The parse floor: the worker's own function, one thread, this process. */
async function parseFloor(seconds) {
  const { default: parse } = await import(join(ROOT, 'dist', 'workers', 'preview.js'));
  const limits = { numWords: 50, maxLength: 200, numTitleWords: 30, maxTitleLength: 150 };
  const task = () => ({
    op: 'preview-html',
    bytes: new Uint8Array(PAGE),
    contentType: 'text/html; charset=utf-8',
    pageUrl: 'http://x/',
    limits,
  });
  for (let i = 0; i < 20; i++) await parse(task());
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < Math.min(3, seconds) * 1000) {
    await parse(task());
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

function get(url, headers) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
      })
      .on('error', reject);
  });
}

/** The server's event-loop delay since the previous scrape (ms): p50, p99, max. */
async function loopDelay(metricsPort) {
  const text = await new Promise((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${metricsPort}/metrics`, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  const value = (name) => {
    const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? round(Number(m[1]) * 1000, 2) : null;
  };
  return {
    p50: value('nodejs_eventloop_lag_p50_seconds'),
    p99: value('nodejs_eventloop_lag_p99_seconds'),
    max: value('nodejs_eventloop_lag_max_seconds'),
  };
}

/**
 * Both preview scenarios on one server of their own (it needs private-network previews and its
 * metrics listener). Skipped against --target: that server would have to allow previews of
 * 127.0.0.1, which no production config does. ctx: { external, durationS, postgres, workDir,
 * concurrency, threads, suffix }.
 */
export async function runPreview(ctx, scenarios) {
  const wanted = PREVIEW_SCENARIOS.filter((s) => scenarios.includes(s));
  if (!wanted.length) return {};
  if (ctx.external) {
    console.log(
      `\n== ${wanted.join(', ')}: skipped (needs a server that previews 127.0.0.1 and exposes its metrics; start it without --target)`,
    );
    return {};
  }
  const site = http.createServer((req, res) =>
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE),
  );
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  let repo;
  try {
    return await previewScenarios({ ...ctx, sitePort: site.address().port, started: (r) => (repo = r) }, wanted);
  } finally {
    await repo?.stop().catch(() => {});
    site.close();
  }
}

async function previewScenarios(
  { durationS: seconds, concurrency = 8, threads = 2, postgres = '', workDir, sitePort, started, suffix = '' },
  wanted,
) {
  concurrency ||= 8;
  const m = machineInfo();
  console.log(
    `\n== ${wanted.join(', ')}: page ${PAGE.length} bytes; ${seconds} s, ${concurrency} concurrent, ${threads} parse threads`,
  );
  const floor = await parseFloor(seconds);
  console.log(`  parse floor (one thread, in process): ${round(floor)} pages/s`);
  const metricsPort = await freePort();
  const repo = await startOurRepo(join(workDir, 'preview'), {
    postgres,
    overrides: [
      'urlPreviews.allowedNetworks=["127.0.0.1/32"]',
      `urlPreviews.numWorkers=${threads}`,
      'metrics.enabled=true',
      `metrics.port=${metricsPort}`,
    ],
  });
  started(repo);
  const headers = { host: repo.host, authorization: `Bearer ${repo.token}` };
  const previewUrl = (target) => `${repo.url}/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(target)}`;
  const first = await get(previewUrl(`http://127.0.0.1:${sitePort}/warm`), headers);
  if (first.status !== 200) throw new Error(`preview answered ${first.status}`);
  const out = {};
  const summary = { pageBytes: PAGE.length, threads, concurrency, parseFloorPerThread: round(floor) };

  if (wanted.includes('preview-uncached')) {
    await loopDelay(metricsPort);
    await new Promise((r) => setTimeout(r, Math.min(2, seconds) * 1000));
    const idleLoop = await loopDelay(metricsPort);
    // Uncached: every request a new URL.
    let next = 0;
    let done = 0;
    let errors = 0;
    const lat = [];
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    const sampler = startRssSampler([repo.pid]);
    const { cpu } = await withServerCpu(repo.pid, () =>
      Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < until) {
            const r = await get(previewUrl(`http://127.0.0.1:${sitePort}/p/${next++}`), headers).catch(() => ({
              status: 0,
              ms: 0,
            }));
            if (r.status === 200) {
              done++;
              lat.push(r.ms);
            } else errors++;
          }
        }),
      ),
    );
    const rss = await sampler.stop();
    const busyLoop = await loopDelay(metricsPort);
    // Requests started before the deadline finish after it: divide by the time really taken.
    const uncachedRate = done / ((performance.now() - t0) / 1000);
    lat.sort((x, y) => x - y);
    const pct = (p) => (lat.length ? round(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]) : null);
    summary.uncached = {
      previewsPerS: round(uncachedRate),
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      errors,
      serverCpuS: round(cpu, 1),
      peakRssMiB: round(rss.peakBytes / 1048576),
      ratioToFloor: ratio(uncachedRate, floor * threads),
    };
    summary.eventLoopDelayIdleMs = idleLoop;
    summary.eventLoopDelayWhileParsingMs = busyLoop;
    printTable(
      'preview-uncached (200 KB page, every URL new)',
      ['figure', 'value', 'ratio'],
      [
        [
          'previews/s',
          summary.uncached.previewsPerS,
          `${summary.uncached.ratioToFloor} of ${threads} x the one-thread parse floor (${summary.parseFloorPerThread}/s)`,
        ],
        ['errors', errors, ''],
        ['server peak RSS MiB', summary.uncached.peakRssMiB, ''],
        [
          'server event-loop delay p50 / p99 / max ms',
          `${busyLoop.p50} / ${busyLoop.p99} / ${busyLoop.max}`,
          `idle: ${idleLoop.p50} / ${idleLoop.p99} / ${idleLoop.max}`,
        ],
      ],
    );
    out['preview-uncached'] = summary;
  }
  if (wanted.includes('preview-cached')) {
    // Cached: one URL, already stored.
    const cached = await runAutocannon({
      url: previewUrl(`http://127.0.0.1:${sitePort}/warm`),
      headers,
      connections: 32,
      durationS: seconds,
    });
    summary.cached = {
      reqPerS: round(cached.reqPerSec),
      p50Ms: cached.latencyP50,
      p99Ms: cached.latencyP99,
      non2xx: cached.non2xx,
      errors: cached.errors,
    };
    printTable(
      'preview-cached (one URL, autocannon c32)',
      ['figure', 'value'],
      [
        ['req/s', summary.cached.reqPerS],
        ['p99 ms', summary.cached.p99Ms],
      ],
    );
    out['preview-cached'] = summary;
  }
  console.log(SHARED_CORES_NOTE);
  const file = writeResult('preview', { scenario: 'preview', machine: m, seconds, summary }, suffix);
  console.log(`wrote ${file}`);
  return out;
}

// Standalone CLI, as before the scenarios existed.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opt } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '8' },
      threads: { type: 'string', default: '2' },
      postgres: { type: 'string', default: '' },
    },
  });
  ensureBuilt();
  installCleanup();
  let failed = false;
  try {
    const m = machineInfo();
    console.log(`preview bench: ${m.cpus} cores (${m.cpuModel}), node ${m.node}`);
    const workDir = join(ROOT, 'bench', '.work', `preview-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await runPreview(
      {
        durationS: Number(opt.seconds),
        concurrency: Number(opt.concurrency),
        threads: Number(opt.threads),
        postgres: opt.postgres,
        workDir,
        suffix: opt.postgres ? 'postgres' : '',
      },
      PREVIEW_SCENARIOS,
    );
  } catch (e) {
    failed = true;
    console.error(e);
  } finally {
    await stopAll();
  }
  process.exit(failed ? 1 : 0);
}

async function withServerCpu(pid, fn) {
  const before = cpuSeconds([pid]);
  await fn();
  return { cpu: cpuSeconds([pid]) - before };
}
