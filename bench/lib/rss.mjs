// Samples the summed VmRSS of some processes every `intervalMs` from a worker thread, so that
// the sampling keeps its pace while the main thread is busy generating an upload body.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';

function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

if (!isMainThread && workerData?.rssSampler) {
  const { pids, intervalMs, flag } = workerData;
  const stop = new Int32Array(flag);
  const t0 = performance.now();
  let peak = 0;
  let samples = 0;
  let sum = 0;
  const timeline = []; // [ms, bytes] every ~250 ms, for the JSON record
  let nextMark = 0;
  for (;;) {
    let kb = 0;
    for (const p of pids) kb += rssKb(p);
    const now = performance.now() - t0;
    samples++;
    sum += kb;
    if (kb > peak) peak = kb;
    if (now >= nextMark) {
      timeline.push([Math.round(now), kb * 1024]);
      nextMark = now + 250;
    }
    if (Atomics.wait(stop, 0, 0, intervalMs) !== 'timed-out') break;
  }
  parentPort.postMessage({
    peakBytes: peak * 1024,
    meanBytes: (sum / samples) * 1024,
    samples,
    timeline,
    elapsedMs: performance.now() - t0,
  });
}

/** Starts sampling; `stop()` resolves with { peakBytes, meanBytes, samples, timeline, elapsedMs }. */
export function startRssSampler(pids, intervalMs = 20) {
  const flag = new SharedArrayBuffer(4);
  const w = new Worker(new URL(import.meta.url), { workerData: { rssSampler: true, pids, intervalMs, flag } });
  const result = new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return {
    async stop() {
      const f = new Int32Array(flag);
      Atomics.store(f, 0, 1);
      Atomics.notify(f, 0);
      const r = await result;
      await w.terminate();
      return r;
    },
  };
}

/** Median RSS of a few samples taken `intervalMs` apart: the idle baseline. */
export async function idleRss(pids, n = 10, intervalMs = 20) {
  const vals = [];
  for (let i = 0; i < n; i++) {
    let kb = 0;
    for (const p of pids) kb += rssKb(p);
    vals.push(kb * 1024);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  vals.sort((a, b) => a - b);
  return vals[Math.floor(vals.length / 2)];
}
