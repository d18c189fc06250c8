// memory-sizing: what each kind of load adds to the server's RSS, measured on a fresh server of
// its own, so the README's sizing rule comes from figures rather than MMR's formula. Steps, each
// after the last (RSS sampled every 20 ms from a worker thread):
// 1. idle, after start and one request, and again 35 s later (pool threads timed out);
// 2. the blob cache filled with F files of 1 MiB (each downloaded minDownloads times), growth
//    per cached MiB (the cache's size from its own gauge on the metrics listener);
// 3. D slow downloads in flight at once (distinct 8 MiB files not in the cache; each client
//    reads its first bytes and then waits 1 s), peak growth per download;
// 4. U uploads of 32 MiB sent at once, peak growth per upload;
// 5. thumbnails of 4000x3000 JPEGs with one request per pool thread, peak growth per thread.
// Skipped with --target (needs our metrics listener and a fresh process).
import http from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { startOurRepo, BENCH_HOST } from './lib/repo.mjs';
import { bodyBytes, specUpload, sendBody, MiB } from './lib/http.mjs';
import { startRssSampler, idleRss } from './lib/rss.mjs';
import { freePort } from './lib/proc.mjs';
import { photoJpeg } from './lib/images.mjs';
import { printTable, round, writeResult } from './lib/report.mjs';

export const MEMORY_SCENARIOS = ['memory-sizing'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (b) => round(b / MiB, 1);

function scrapeGauge(port, name) {
  return new Promise((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${port}/metrics`, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
          resolve(m ? Number(m[1]) : null);
        });
      })
      .on('error', reject);
  });
}

function download(repo, media, { holdMs = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${repo.url}/_matrix/client/v1/media/download/${media.server}/${media.mediaId}`,
      {
        headers: { Host: BENCH_HOST, Authorization: `Bearer ${repo.token}` },
        agent: false,
      },
      (res) => {
        let n = 0;
        let held = holdMs === 0;
        res.on('data', (d) => {
          n += d.length;
          if (!held) {
            held = true;
            res.pause();
            setTimeout(() => res.resume(), holdMs);
          }
        });
        res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

/** Runs fn while sampling; returns { peakGrowth, result } against an idle reading just before. */
async function peakDuring(pid, fn) {
  const before = await idleRss([pid]);
  const sampler = startRssSampler([pid]);
  const result = await fn();
  const rss = await sampler.stop();
  return { before, peak: rss.peakBytes, growth: rss.peakBytes - before, result };
}

export async function runMemory(ctx) {
  if (ctx.external) {
    console.log('\n== memory-sizing: skipped with --target (needs a fresh server of ours and its metrics listener)');
    return {};
  }
  const smoke = ctx.smoke;
  const F = smoke ? 8 : 256; // cached 1 MiB files
  const D = smoke ? 4 : 64; // slow downloads at once
  const U = smoke ? 2 : 16; // uploads at once
  const uploadMiB = smoke ? 4 : 32;
  const metricsPort = await freePort();
  const repo = await startOurRepo(join(ctx.workDir, 'memory'), {
    postgres: ctx.postgres,
    overrides: [
      ...ctx.overrides,
      'metrics.enabled=true',
      `metrics.port=${metricsPort}`,
      'thumbnails.pregenerate=false',
      'thumbnails.maxQueue=1024',
    ],
  });
  const pid = repo.pid;
  try {
    console.log(
      `\n== memory-sizing: fresh server pid ${pid}; ${F} x 1 MiB cached, ${D} slow 8 MiB downloads, ${U} x ${uploadMiB} MiB uploads, thumbnails`,
    );
    await download(repo, await specUpload(repo, { bytes: bodyBytes(1000) }));
    await sleep(500);
    const idle = await idleRss([pid]);
    console.log(`  idle RSS ${mib(idle)} MiB`);
    // 1b. Idle once the image and preview pools' threads have timed out (30 s idle; they start
    // on demand), which is what a quiet server holds. Skipped by --smoke.
    let settled = null;
    if (!smoke) {
      await sleep(35_000);
      settled = await idleRss([pid]);
      console.log(`  idle RSS after the pools' idle timeout ${mib(settled)} MiB`);
    }

    // 2. Cache fill.
    const files = [];
    for (let i = 0; i < F; i++) files.push(await specUpload(repo, { bytes: bodyBytes(MiB) }));
    await sleep(300);
    const beforeCache = await idleRss([pid]);
    for (let round5 = 0; round5 < 5; round5++) {
      for (let i = 0; i < files.length; i += 8) await Promise.all(files.slice(i, i + 8).map((f) => download(repo, f)));
    }
    await sleep(1000); // fills are one extra read each, after the admitting download
    const cacheBytes = (await scrapeGauge(metricsPort, 'media_cache_bytes')) ?? 0;
    const afterCache = await idleRss([pid]);
    const cacheGrowth = afterCache - beforeCache;
    console.log(
      `  cache holds ${mib(cacheBytes)} MiB; RSS +${mib(cacheGrowth)} MiB (${round(cacheGrowth / Math.max(1, cacheBytes), 2)} x the cached bytes)`,
    );

    // 3. Slow downloads in flight at once.
    const big = [];
    for (let i = 0; i < D; i++) big.push(await specUpload(repo, { size: 8 * MiB }));
    const dl = await peakDuring(pid, () => Promise.all(big.map((m) => download(repo, m, { holdMs: 1000 }))));
    const dlBad = dl.result.filter((r) => r.status !== 200 || r.bytes !== 8 * MiB).length;
    console.log(
      `  ${D} slow downloads: peak +${mib(dl.growth)} MiB (${mib(dl.growth / D)} MiB each)${dlBad ? `, ${dlBad} FAILED` : ''}`,
    );

    // 4. Uploads at once.
    const up = await peakDuring(pid, () =>
      Promise.all(
        Array.from({ length: U }, () =>
          sendBody({
            url: `${repo.url}/_matrix/media/v3/upload`,
            headers: { Host: BENCH_HOST, Authorization: `Bearer ${repo.token}` },
            size: uploadMiB * MiB,
          }),
        ),
      ),
    );
    const upBad = up.result.filter((r) => r.status !== 200).length;
    console.log(
      `  ${U} uploads of ${uploadMiB} MiB: peak +${mib(up.growth)} MiB (${mib(up.growth / U)} MiB each)${upBad ? `, ${upBad} FAILED` : ''}`,
    );

    // 5. Thumbnails, one request per pool thread (numWorkers 0 = one per core).
    const poolThreads = cpus().length;
    const jpegs = [];
    const n = smoke ? poolThreads : poolThreads * 4;
    for (let i = 0; i < n; i++) jpegs.push(await specUpload(repo, { bytes: await photoJpeg({ seed: 100 + i }) }));
    const th = await peakDuring(pid, async () => {
      const out = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: poolThreads }, async () => {
          while (next < jpegs.length) {
            const m = jpegs[next++];
            out.push(
              await new Promise((resolve, reject) => {
                http
                  .get(
                    `${repo.url}/_matrix/client/v1/media/thumbnail/${m.server}/${m.mediaId}?width=320&height=240&method=scale`,
                    {
                      headers: { Host: BENCH_HOST, Authorization: `Bearer ${repo.token}` },
                    },
                    (res) => {
                      res.resume();
                      res.on('end', () => resolve(res.statusCode));
                    },
                  )
                  .on('error', reject);
              }),
            );
          }
        }),
      );
      return out;
    });
    const thBad = th.result.filter((s) => s !== 200).length;
    console.log(
      `  thumbnails, ${poolThreads} in flight: peak +${mib(th.growth)} MiB (${mib(th.growth / poolThreads)} MiB per thread)${thBad ? `, ${thBad} FAILED` : ''}`,
    );

    const summary = {
      idleRssMiB: mib(idle),
      idleSettledRssMiB: settled === null ? null : mib(settled),
      cache: {
        cachedMiB: mib(cacheBytes),
        rssGrowthMiB: mib(cacheGrowth),
        perCachedByte: round(cacheGrowth / Math.max(1, cacheBytes), 2),
      },
      slowDownloads: {
        count: D,
        fileMiB: 8,
        peakGrowthMiB: mib(dl.growth),
        perDownloadMiB: mib(dl.growth / D),
        failures: dlBad,
      },
      uploads: {
        count: U,
        sizeMiB: uploadMiB,
        peakGrowthMiB: mib(up.growth),
        perUploadMiB: mib(up.growth / U),
        failures: upBad,
      },
      thumbnails: {
        threads: poolThreads,
        source: '4000x3000 JPEG',
        peakGrowthMiB: mib(th.growth),
        perThreadMiB: mib(th.growth / poolThreads),
        failures: thBad,
      },
      failures: dlBad + upBad + thBad,
    };
    printTable(
      'memory-sizing (RSS of the server process, worker threads included)',
      ['load', 'peak growth MiB', 'per unit MiB'],
      [
        ['idle (after start)', summary.idleRssMiB, null],
        ['idle (35 s later, pool threads ended)', summary.idleSettledRssMiB, null],
        [
          `cache holding ${summary.cache.cachedMiB} MiB`,
          summary.cache.rssGrowthMiB,
          `${summary.cache.perCachedByte} x cached`,
        ],
        [`${D} slow 8 MiB downloads`, summary.slowDownloads.peakGrowthMiB, summary.slowDownloads.perDownloadMiB],
        [`${U} x ${uploadMiB} MiB uploads`, summary.uploads.peakGrowthMiB, summary.uploads.perUploadMiB],
        [`thumbnails, ${poolThreads} threads`, summary.thumbnails.peakGrowthMiB, summary.thumbnails.perThreadMiB],
      ],
    );
    const file = writeResult('memory-sizing', { summary }, ctx.suffix);
    console.log(`wrote ${file}`);
    if (summary.failures) throw new Error(`memory-sizing: ${summary.failures} requests failed`);
    return { 'memory-sizing': summary };
  } finally {
    await repo.stop();
  }
}
