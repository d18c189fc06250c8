#!/usr/bin/env node
// A quick measurement, not a test: one 100 MiB upload into each datastore kind, through the
// Datastore interface exactly as the upload pipeline drives it (64 KiB chunks, pausing when the
// writer asks, finish, commit). s3rver runs in a child process so its own CPU work does not sit
// on our event loop. Prints the median of --reps runs (interleaved) per kind: MiB/s, the share
// of our event loop that was busy (ELU) and the RSS growth.
//
//   npx tsc -p . && node bench/s3-upload.mjs [--mib 100] [--reps 3]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ROOT, ensureBuilt } from './lib/repo.mjs';

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '100' }, reps: { type: 'string', default: '3' } },
});
const MIB = Number(values.mib);
const REPS = Number(values.reps);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

ensureBuilt();
const dist = (p) => join(ROOT, 'dist', p);
const { FileDatastore } = await import(dist('src/datastores/file.js'));
const { S3Datastore } = await import(dist('src/datastores/s3/store.js'));
const { UploadSinkPool } = await import(dist('src/pools/upload-sink.js'));
const { defaultS3Opts } = await import(dist('src/config/defaults.js'));

const work = mkdtempSync(join(tmpdir(), 'media-repo-s3-bench-'));
const BUCKET = 'bench-media';

/** s3rver in its own process; resolves with its port. */
function startS3rver() {
  const code = `
    import S3rver from 's3rver';
    const s = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(join(work, 's3'))}, configureBuckets: [{ name: '${BUCKET}' }] });
    const { port } = await s.run();
    console.log('PORT ' + port);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /PORT (\d+)/.exec(String(d));
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (c) => reject(new Error(`s3rver exited with ${c}`)));
  });
}

const { child, port } = await startS3rver();
const sinks = new UploadSinkPool();
const s3opts = (over = {}) => ({
  ...defaultS3Opts(),
  endpoint: `127.0.0.1:${port}`,
  bucketName: BUCKET,
  ssl: false,
  accessKeyId: 'S3RVER',
  accessSecret: 'S3RVER',
  ...over,
});
const kinds = {
  file: async () => {
    const ds = new FileDatastore('f', join(work, 'files'), ['all'], true, 'b0', sinks);
    await ds.init();
    return ds;
  },
  's3 streamed': async () => new S3Datastore('s', s3opts(), ['all'], true, 'b0', sinks),
  's3 tempPath': async () => {
    const ds = new S3Datastore('t', s3opts({ tempPath: join(work, 'spool') }), ['all'], true, 'b0', sinks);
    await ds.init();
    return ds;
  },
};

const body = randomBytes(MIB * 1024 * 1024);
const CHUNK = 64 * 1024;

async function once(ds) {
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const w = await ds.createStaging();
  for (let i = 0; i < body.length; i += CHUNK) {
    // A fresh copy per chunk, as the HTTP layer hands them over.
    if (!w.write(Buffer.from(body.subarray(i, i + CHUNK)))) await new Promise((r) => w.onDrain(r));
  }
  const { sha256 } = await w.finish();
  const tFinished = performance.now();
  const loc = await ds.commit(w, sha256);
  const t1 = performance.now();
  const elu = performance.eventLoopUtilization(elu0).utilization;
  clearInterval(sampler);
  await ds.delete(loc);
  return {
    mibps: MIB / ((t1 - t0) / 1000),
    bodyMs: tFinished - t0,
    commitMs: t1 - tFinished,
    elu,
    rssMib: (rssPeak - rssBefore) / 1048576,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
try {
  const stores = Object.fromEntries(
    await Promise.all(Object.entries(kinds).map(async ([k, make]) => [k, await make()])),
  );
  await once(stores.file); // warm-up: worker threads, sockets, JIT
  for (let rep = 0; rep < REPS; rep++) {
    const order = Object.keys(kinds);
    for (let i = 0; i < rep % order.length; i++) order.push(order.shift());
    for (const k of order) results[k].push(await once(stores[k]));
  }
  console.log(`${MIB} MiB upload, ${REPS} reps (median), s3rver ${'in a child process'}, ${process.version}`);
  console.log('kind          MiB/s   body ms  commit ms  event-loop busy  RSS growth MiB');
  for (const [k, rs] of Object.entries(results)) {
    const m = (f) => median(rs.map(f));
    console.log(
      `${k.padEnd(12)} ${m((r) => r.mibps)
        .toFixed(1)
        .padStart(6)}  ${m((r) => r.bodyMs)
        .toFixed(0)
        .padStart(8)}  ${m((r) => r.commitMs)
        .toFixed(0)
        .padStart(9)}  ${(m((r) => r.elu) * 100).toFixed(0).padStart(14)}%  ${m((r) => r.rssMib)
        .toFixed(0)
        .padStart(14)}`,
    );
  }
  const f = median(results.file.map((r) => r.mibps));
  console.log(
    `ratios vs file: s3 streamed ${(median(results['s3 streamed'].map((r) => r.mibps)) / f).toFixed(2)}x, s3 tempPath ${(median(results['s3 tempPath'].map((r) => r.mibps)) / f).toFixed(2)}x`,
  );
} finally {
  child.kill();
  await sinks.close();
  rmSync(work, { recursive: true, force: true });
}
