// thread-scaling (issue 19): hot 1 KiB downloads and a stored thumbnail at 1, 2, 4, 8 and 16
// HTTP threads (repo.httpThreads), each next to nginx with as many worker processes, all in the
// same run; plus the RSS each HTTP thread adds (idle server, measured after the same warm-up).
// One server per thread count (the setting applies at start). --threads LIST picks the counts.
import os from 'node:os';
import { join } from 'node:path';
import { startOurRepo } from './lib/repo.mjs';
import { startNginx } from './lib/nginx.mjs';
import { bodyBytes, specUpload, downloadRequests, httpGet, MiB } from './lib/http.mjs';
import { runWrk } from './lib/load.mjs';
import { withCpu } from './lib/proc.mjs';
import { idleRss } from './lib/rss.mjs';
import { photoJpeg } from './lib/images.mjs';
import { uploadImage } from './thumbnail.mjs';
import { median, round, ratio, printTable, writeResult, SHARED_CORES_NOTE } from './lib/report.mjs';

export const THREAD_SCALING_SCENARIOS = ['thread-scaling'];

const THUMB = '?width=320&height=240&method=scale';

/** Median req/s (and CPU) of `reps` wrk runs. */
async function measure(v, { reps, durationS, wrkThreads, connections }) {
  const runs = [];
  for (let i = 0; i < reps; i++) {
    const { result } = await withCpu(v.pids(), () =>
      runWrk({ url: v.url, headers: v.headers, threads: wrkThreads, connections, durationS }),
    );
    if (result.non2xx || result.errors)
      throw new Error(`${v.url}: ${result.non2xx} non-2xx answers, ${result.errors} socket errors under load`);
    runs.push(result);
  }
  return { reqPerSec: round(median(runs.map((r) => r.reqPerSec)), 0), runs: runs.map((r) => round(r.reqPerSec, 0)) };
}

export async function runThreadScaling(ctx) {
  if (ctx.external) return {}; // it starts servers of its own
  const { reps, durationS, workDir, overrides, postgres } = ctx;
  const cores = os.availableParallelism();
  const counts = ctx.threadCounts ?? [1, 2, 4, 8, 16];
  // wrk needs cores too: a quarter of them (at least 2), the same for every server.
  const wrkThreads = Math.max(2, Math.floor(cores / 4));
  const connections = Math.max(64, wrkThreads * 32);
  console.log(
    `\n== thread-scaling: HTTP threads ${counts.join(', ')} on ${cores} cores; wrk -t${wrkThreads} -c${connections}, ${reps} x ${durationS} s`,
  );
  const tiny = bodyBytes(1024);
  const photo = await photoJpeg();
  const rows = [];
  const points = [];
  let oneThreadRss = null;
  for (const n of counts) {
    const target = await startOurRepo(join(workDir, `threads-${n}`), {
      postgres,
      overrides: ['thumbnails.pregenerate=false', ...overrides, `repo.httpThreads=${n}`],
    });
    const nginx = await startNginx(join(workDir, `nginx-${n}`), { workers: n });
    try {
      const media = await specUpload(target, { bytes: tiny });
      const reqs = downloadRequests(target, media);
      const image = await uploadImage(target, photo, 'image/jpeg');
      const thumbPath = `/_matrix/client/v1/media/thumbnail/${image.server}/${image.mediaId}${THUMB}`;
      const authed = { host: target.host, authorization: `Bearer ${target.token}` };
      const first = await httpGet(target.url + thumbPath, { headers: authed });
      if (first.status !== 200) throw new Error(`thumbnail answered ${first.status}`);
      const ours = () => [target.pid];
      const variants = {
        download: { url: target.url + reqs.authed.path, headers: reqs.authed.headers, pids: ours },
        thumbnail: { url: target.url + thumbPath, headers: authed, pids: ours },
        nginxDownload: { url: nginx.url + nginx.putStatic('tiny.bin', tiny), headers: {}, pids: nginx.pids },
        nginxThumbnail: { url: nginx.url + nginx.putStatic('thumb.jpg', first.body), headers: {}, pids: nginx.pids },
      };
      for (const v of Object.values(variants)) {
        const r = await httpGet(v.url, { headers: v.headers });
        if (r.status !== 200) throw new Error(`${v.url} answered ${r.status}`);
      }
      const opts = { reps, durationS, wrkThreads, connections };
      const point = { threads: n };
      for (const [k, v] of Object.entries(variants)) point[k] = await measure(v, opts);
      await new Promise((r) => setTimeout(r, 2000)); // settle before the idle reading
      point.idleRssMiB = round((await idleRss([target.pid])) / MiB, 1);
      if (n === 1) oneThreadRss = point.idleRssMiB;
      point.rssPerThreadMiB =
        oneThreadRss !== null && n > 1 ? round((point.idleRssMiB - oneThreadRss) / (n - 1), 1) : null;
      points.push(point);
      rows.push([
        n,
        point.download.reqPerSec,
        point.nginxDownload.reqPerSec,
        ratio(point.download.reqPerSec, point.nginxDownload.reqPerSec),
        point.thumbnail.reqPerSec,
        point.nginxThumbnail.reqPerSec,
        ratio(point.thumbnail.reqPerSec, point.nginxThumbnail.reqPerSec),
        point.idleRssMiB,
        point.rssPerThreadMiB ?? '-',
      ]);
      console.log(`  ${n} threads: ${JSON.stringify(point)}`);
    } finally {
      await nginx.stop().catch(() => {});
      await target.stop().catch(() => {});
    }
  }
  const base = points.find((p) => p.threads === 1);
  for (const p of points) {
    p.downloadVsOneThread = base ? ratio(p.download.reqPerSec, base.download.reqPerSec) : null;
    p.thumbnailVsOneThread = base ? ratio(p.thumbnail.reqPerSec, base.thumbnail.reqPerSec) : null;
  }
  printTable(
    'thread-scaling: req/s by HTTP threads (nginx with as many workers)',
    [
      'threads',
      '1 KiB ours',
      '1 KiB nginx',
      'ratio',
      'thumb ours',
      'thumb nginx',
      'ratio',
      'idle RSS MiB',
      'MiB/thread',
    ],
    rows,
  );
  if (cores <= 2) console.log(`  ${SHARED_CORES_NOTE}`);
  const record = { scenario: 'thread-scaling', cores, wrkThreads, connections, reps, durationS, points };
  writeResult('thread-scaling', record, ctx.suffix);
  return { 'thread-scaling': record };
}
