import t from 'tap';
import sharp from 'sharp';
import { writeFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ThumbnailPools } from '../src/pools/thumbnails.js';
import { libuvThreadsFor, poolThreads } from '../src/pools/thumbnail-threads.cjs';
import { MatrixError } from '../src/errors.js';
import { restrictLoaders } from '../workers/image/harden.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { freePort, testConfig } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';

const limits = {
  maxPixels: 32_000_000,
  maxFrames: 1000,
  maxAnimateSizeBytes: 10_485_760,
  stillFrame: 0.5,
  types: ['image/jpeg', 'image/png'],
};
const target = { width: 64, height: 64, method: 'scale' as const, animated: false };

async function jpegBytes(w: number, h: number): Promise<Uint8Array> {
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) & 0xff;
  const b = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .jpeg()
    .toBuffer();
  const own = new Uint8Array(new ArrayBuffer(b.length));
  own.set(b);
  return own;
}

t.test('thread counts follow thumbnails.numWorkers, and libuv gets one thread per image thread plus 4', async (t) => {
  t.same(poolThreads(8), { static: 8, animated: 4, blurhash: 2 });
  t.same(poolThreads(1), { static: 1, animated: 1, blurhash: 1 });
  t.same(poolThreads(0, 6), { static: 6, animated: 3, blurhash: 2 }, '0 = one per core');
  t.equal(libuvThreadsFor(poolThreads(16)), 16 + 8 + 4 + 4);
});

t.test('the source buffer is transferred to the worker, not copied, and the output comes back', async (t) => {
  const pools = new ThumbnailPools(poolThreads(1), 8);
  t.teardown(() => pools.close());
  const probe = await pools.probe();
  t.match(probe.vips, /^\d+\.\d+/, 'the probe reports the libvips version');
  t.match(probe.decoders.sandbox, /^(bwrap|unshare|none)$/, 'and the decoder fence');
  t.type(probe.decoders.tools.ffmpeg, 'boolean');
  const source = await jpegBytes(400, 300);
  const size = source.byteLength;
  t.ok(size > 1000);
  const pending = pools.thumbnail(source, [target], limits, false);
  const reply = await pending;
  t.equal(source.byteLength, 0, 'the sender no longer holds the bytes (detached by the transfer)');
  t.ok(reply.ok);
  if (!reply.ok) return;
  const out = reply.outputs[0]!;
  t.equal(out.kind, 'thumbnail');
  if (out.kind !== 'thumbnail') return;
  t.equal(out.contentType, 'image/jpeg');
  t.equal(
    out.bytes.byteLength,
    out.bytes.buffer.byteLength,
    'the output owns its whole buffer (it was moved, not sliced from a pool)',
  );
  const meta = await sharp(Buffer.from(out.bytes)).metadata();
  t.same([meta.width, meta.height], [64, 48]);
  t.equal(pools.tasksRun().static, 1, 'one thumbnail task (the probe is not counted)');
});

t.test('the start-up probe fails with one actionable message when the worker cannot load sharp', async (t) => {
  // A worker module whose import fails the way a broken sharp install does.
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-probe-'));
  const broken = join(dir, 'worker.mjs');
  writeFileSync(
    broken,
    'throw new Error(\'Could not load the "sharp" module using the linux-x64 runtime\');\nexport default () => null;\n',
  );
  const pools = new ThumbnailPools({ static: 1, animated: 1, blurhash: 1 }, 4, pathToFileURL(broken));
  t.teardown(() => pools.close().catch(() => undefined));
  await t.rejects(
    pools.probe(),
    /sharp cannot run in a worker thread \(.*linux-x64 runtime.*\)\. Reinstall with `npm ci`/,
  );
});

t.test('a full queue answers 429 M_LIMIT_EXCEEDED with Retry-After instead of growing', async (t) => {
  const pools = new ThumbnailPools({ static: 1, animated: 1, blurhash: 1 }, 2);
  t.teardown(() => pools.close());
  const source = await jpegBytes(2000, 1500);
  const jobs = Array.from({ length: 12 }, () => {
    const copy = new Uint8Array(new ArrayBuffer(source.length));
    copy.set(source);
    return pools.thumbnail(copy, [{ ...target, width: 800, height: 600 }], limits, false).then(
      () => 'ok',
      (e: unknown) => e,
    );
  });
  const results = await Promise.all(jobs);
  const refused = results.filter((r) => r instanceof MatrixError) as MatrixError[];
  t.equal(refused.length, 8, '2 admitted (1 thread x 2 slots) + 2 waiting; the other 8 refused');
  t.equal(results.filter((r) => r === 'ok').length, 4, 'the admitted and waiting ones complete');
  t.equal(refused[0]!.status, 429);
  t.equal(refused[0]!.errcode, 'M_LIMIT_EXCEEDED');
  t.equal(refused[0]!.headers['Retry-After'], '1');
});

t.test('tasks waiting for admission hold no source bytes: the source is read only when admitted', async (t) => {
  const pools = new ThumbnailPools({ static: 1, animated: 1, blurhash: 1 }, 16);
  t.teardown(() => pools.close());
  const source = await jpegBytes(1200, 900);
  let loaded = 0;
  let maxLoadedNotDone = 0;
  let done = 0;
  const jobs = Array.from({ length: 8 }, () =>
    pools
      .thumbnail(
        async () => {
          loaded++;
          maxLoadedNotDone = Math.max(maxLoadedNotDone, loaded - done);
          const copy = new Uint8Array(new ArrayBuffer(source.length));
          copy.set(source);
          return copy;
        },
        [target],
        limits,
        false,
      )
      .then((r) => {
        done++;
        return r;
      }),
  );
  await new Promise((r) => setImmediate(r));
  t.ok(loaded <= 2, `right after submitting 8, only the 2 admitted sources were read (${loaded})`);
  const replies = await Promise.all(jobs);
  t.ok(
    replies.every((r) => r.ok),
    'all 8 complete',
  );
  t.equal(loaded, 8);
  t.ok(maxLoadedNotDone <= 2, `never more than 2 sources in memory at once (${maxLoadedNotDone})`);
});

/** Threads of a process named `node` (libuv's pool, worker threads, V8's platform threads). */
const nodeThreads = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).filter((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === 'node';
    } catch {
      return false;
    }
  }).length;

/** Starts the launcher through a shell that drops NODE_OPTIONS: tap's spawn hook puts an --import
 * there, which would load modules (and start libuv's pool) before the launcher could size it. */
async function launch(configFile: string, uv: string | null): Promise<{ child: ChildProcess; output: () => string }> {
  const launcher = new URL('../src/launcher.cjs', import.meta.url).pathname;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  if (uv !== null) env.UV_THREADPOOL_SIZE = uv;
  const child = spawn(
    '/bin/sh',
    ['-c', 'unset NODE_OPTIONS; exec "$0" "$@"', process.execPath, launcher, '-config', configFile],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start:\n${out}`)), 60_000);
    child.stdout!.on('data', () => {
      if (out.includes('media-repo listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${out}`));
    });
  });
  return { child, output: () => out };
}

t.test(
  "the launcher sizes libuv's thread pool from thumbnails.numWorkers before anything starts it",
  { skip: process.platform !== 'linux' },
  async (t) => {
    const hs = await startFixtureHomeserver();
    t.teardown(() => hs.close());
    const counts: number[] = [];
    for (const uv of ['4', null]) {
      const dir = mkdtempSync(join(tmpdir(), 'media-repo-launcher-'));
      const file = join(dir, 'c.yaml');
      const cfg = testConfig(dir, hs.url, '', {
        repo: { bindAddress: '127.0.0.1', port: await freePort() },
        thumbnails: { numWorkers: 3 },
      });
      writeFileSync(file, yaml.dump(cfg));
      const { child, output } = await launch(file, uv);
      // Let start-up's short-lived threads (the embedded database's init worker) finish.
      await new Promise((r) => setTimeout(r, 2000));
      counts.push(nodeThreads(child.pid!));
      if (uv === null) t.match(output(), /libuvThreads=10\b/, '3 static + 2 animated + 1 blurhash + 4');
      else
        t.match(
          output(),
          /libuv thread pool is smaller/,
          'an explicit UV_THREADPOOL_SIZE is respected, and a too small one warned about',
        );
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    t.equal(counts[1]! - counts[0]!, 6, `the launched process has 6 more libuv threads (${counts.join(' vs ')})`);
  },
);

t.test(
  'a worker starting while others decode never disturbs them (libvips block lists are process-wide)',
  async (t) => {
    // Regression: each new worker used to block every loader and then unblock the trusted ones;
    // a decode on another thread between those two calls failed with "operation is blocked"
    // (seen on 16 cores). Every worker runs restrictLoaders as it starts: run it over and over
    // while decodes are in flight on libuv's threads.
    const jpg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#123456' } })
      .jpeg()
      .toBuffer();
    const errors: string[] = [];
    const jobs = Array.from({ length: 400 }, () =>
      sharp(jpg)
        .resize(8)
        .png()
        .toBuffer()
        .catch((e: Error) => {
          errors.push(e.message);
        }),
    );
    for (let i = 0; i < 3000; i++) restrictLoaders(sharp);
    await Promise.all(jobs);
    t.same(errors.slice(0, 3), [], 'no decode failed');
  },
);
