import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, createServer } from 'node:http';
import { connect } from 'node:net';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ALICE, SERVER_NAME, freePort, spawnRepo, startTestRepo, testConfig, type TestRepo } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { seedPglite } from './helpers/pglite-template.js';
import { waitFor } from './helpers/hostile-store.js';
import { POSTGRES_URL } from './helpers/databases.js';
import { httpThreadCount, libuvThreadsFor, poolThreads } from '../src/pools/thumbnail-threads.cjs';
import { poolShare } from '../src/start/storage.js';

// issue-19: four HTTP threads on one port (repo.httpThreads: 4), the kernel spreading
// connections between them. Every request below goes on a connection of its own, so the flows
// cross threads the way a reverse proxy's many upstream connections do; which thread served
// what is read from each thread's own request counter (the host's per-thread metrics).

const THREADS = 4;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on a new TCP connection (no keep-alive pool: each may land on another thread). */
function onNewConnection(
  port: number,
  method: string,
  path: string,
  opts: { body?: Buffer; headers?: Record<string, string>; token?: string | null } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: {
          Host: SERVER_NAME,
          ...(opts.token === null ? {} : { Authorization: `Bearer ${opts.token ?? ALICE}` }),
          ...(opts.body ? { 'Content-Length': String(opts.body.length) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Responses counted per thread (index 0 = the main thread), from each thread's own registry. */
async function servedPerThread(r: TestRepo): Promise<number[]> {
  const count = (json: unknown[]) => {
    const m = (json as { name: string; values: { value: number }[] }[]).find(
      (x) => x.name === 'media_http_responses_total',
    );
    return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
  };
  const own = count(await r.repo.internal.metricsJson());
  const others = (await r.repo.internal.threads!.metricsJson()).map(count);
  return [own, ...others];
}

const uploadPath = (name: string) => `/_matrix/media/v3/upload?filename=${name}`;
const downloadPath = (id: string, q = '') => `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}${q}`;
const idOf = (a: Answer) => (JSON.parse(a.body.toString()) as { content_uri: string }).content_uri.split('/').pop()!;

/** Runs fn over items with at most `limit` at once. */
async function inParallel<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** Blob files under the media directory (staging excluded). */
function blobFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (e.name !== 'staging' && !e.name.startsWith('.')) walk(join(d, e.name));
      } else out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

t.test('repo.httpThreads: 0 is one per core up to 16; libuv gets a thread per HTTP thread past 4', async (t) => {
  t.equal(httpThreadCount(0, 2), 2);
  t.equal(httpThreadCount(0, 64), 16, 'capped at 16 when automatic');
  t.equal(httpThreadCount(24, 64), 24, 'a configured count is taken as given');
  t.equal(libuvThreadsFor(poolThreads(16), 1), 16 + 8 + 4 + 4);
  t.equal(libuvThreadsFor(poolThreads(16), 16), 16 + 8 + 4 + 16);
});

t.test('database.pool.maxConnections is the process total, split between the HTTP threads', async (t) => {
  for (const [max, idle, count] of [
    [25, 5, 4],
    [25, 5, 16],
    [10, 0, 3],
  ] as const) {
    const shares = Array.from({ length: count }, (_, index) =>
      poolShare({ maxConnections: max, maxIdleConnections: idle }, { count, index }),
    );
    t.equal(
      shares.reduce((a, s) => a + s.maxConnections, 0),
      max,
      `${count} threads share ${max} connections exactly`,
    );
    t.equal(
      shares.reduce((a, s) => a + s.maxIdleConnections, 0),
      idle,
      `and ${idle} idle ones`,
    );
    t.ok(
      shares.every((s) => s.maxConnections >= 1),
      'each thread has at least one',
    );
  }
});

for (const driver of ['pglite', 'postgres'] as const) {
  t.test(`four HTTP threads on one port (${driver})`, { skip: driver === 'postgres' && !POSTGRES_URL }, async (t) => {
    process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION = 'true'; // the fake peer below speaks plain http
    const remoteBytes = randomBytes(6000);
    let peerHits = 0;
    const peer = createServer((req, res) => {
      if (!req.url!.startsWith('/_matrix/media/')) return void res.writeHead(404).end();
      peerHits++;
      // Slow, so that all twenty requests arrive while the first fetch runs.
      setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/x-remote' }).end(remoteBytes), 700);
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    const peerName = `127.0.0.1:${(peer.address() as { port: number }).port}`;
    const CACHE_BYTES = 400_000;
    const r = await startTestRepo(driver, {
      repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'debug', shutdownGraceSeconds: 0, httpThreads: THREADS },
      federation: { allowedNetworks: ['127.0.0.1/32'] },
      downloads: {
        cache: {
          enabled: true,
          maxSizeBytes: CACHE_BYTES,
          maxFileSizeBytes: 90_000,
          minDownloads: 1,
          trackedMinutes: 5,
        },
      },
      metrics: { enabled: true, bindAddress: '127.0.0.1', port: 0 },
    });
    t.teardown(async () => {
      await r.close();
      peer.closeAllConnections();
      peer.close();
    });
    t.equal(r.repo.httpThreads, THREADS, 'the server runs four HTTP threads');
    t.equal(r.repo.internal.threads?.started, THREADS - 1, 'three besides the main thread');

    t.test('connections are spread over the threads', async (t) => {
      const before = await servedPerThread(r);
      await inParallel(Array.from({ length: 80 }), 8, () =>
        onNewConnection(r.port, 'GET', '/healthz', { token: null }),
      );
      const after = await servedPerThread(r);
      const served = after.map((n, i) => n - before[i]!);
      t.equal(
        served.reduce((a, b) => a + b, 0),
        80,
        `every request counted once (per thread: ${served.join(', ')})`,
      );
      t.ok(served.filter((n) => n > 0).length >= 3, `at least three threads served (${served.join(', ')})`);
    });

    t.test('100 identical uploads over their own connections store one blob', async (t) => {
      const bytes = randomBytes(30_000);
      const hash = createHash('sha256').update(bytes).digest('hex');
      const before = await servedPerThread(r);
      const answers = await inParallel(Array.from({ length: 100 }), 16, (_, i) =>
        onNewConnection(r.port, 'POST', uploadPath(`copy${i}.bin`), {
          body: bytes,
          headers: { 'Content-Type': 'application/x-test' },
        }),
      );
      t.same(
        answers.filter((a) => a.status !== 200).map((a) => a.body.toString()),
        [],
        'every upload answered 200',
      );
      const ids = answers.map(idOf);
      t.equal(new Set(ids).size, 100, '100 media IDs');
      const after = await servedPerThread(r);
      t.ok(after.filter((n, i) => n > before[i]!).length >= 3, 'the uploads landed on at least three threads');
      const rows = await r.repo.services.db.query<{ n: string; blobs: string }>(
        'SELECT count(*) AS n, count(DISTINCT location) AS blobs FROM media WHERE sha256_hash = $1',
        [hash],
      );
      t.equal(Number(rows.rows[0]!.n), 100, 'every upload has its row');
      t.equal(Number(rows.rows[0]!.blobs), 1, 'all rows point at one blob');
      const copies = blobFiles(r.mediaDir).filter(
        (f) => statSync(f).size === bytes.length && readFileSync(f).equals(bytes),
      );
      t.equal(copies.length, 1, 'one file on disk holds the content');
      const back = await onNewConnection(r.port, 'GET', downloadPath(ids[57]!));
      t.ok(back.body.equals(bytes), 'a download on another connection returns the bytes');
      // Each upload's log line names its request: unique across the threads' own counters.
      const lineOf = (id: string) => r.logs.find((l) => l.includes('upload stored') && l.includes(id));
      t.ok(await waitFor(() => ids.every((id) => lineOf(id))), 'every upload logged (lines relayed by the threads)');
      const requestIds = ids.map((id) => /requestId="(REQ-[0-9a-z]+)"/.exec(lineOf(id) ?? '')?.[1]);
      t.equal(new Set(requestIds).size, 100, '100 distinct request IDs across the threads');
    });

    t.test('create on one connection, PUT on another: a waiting download is woken at once', async (t) => {
      const created = await onNewConnection(r.port, 'POST', '/_matrix/media/v1/create', {
        body: Buffer.from('{}'),
        headers: { 'Content-Type': 'application/json' },
      });
      t.equal(created.status, 200, 'created');
      const id = idOf(created);
      const bytes = randomBytes(5000);
      // Several waiters, on their own connections (so on several threads), all parked.
      const started = Date.now();
      const waiting = Array.from({ length: 6 }, () =>
        onNewConnection(r.port, 'GET', downloadPath(id, '?timeout_ms=8000')),
      );
      await new Promise((res) => setTimeout(res, 150));
      const put = await onNewConnection(r.port, 'PUT', `/_matrix/media/v3/upload/${SERVER_NAME}/${id}`, {
        body: bytes,
        headers: { 'Content-Type': 'application/x-test' },
      });
      t.equal(put.status, 200, 'PUT answered');
      const got = await Promise.all(waiting);
      const took = Date.now() - started;
      t.same(
        got.map((a) => a.status),
        [200, 200, 200, 200, 200, 200],
        'every waiter answered 200',
      );
      t.ok(
        got.every((a) => a.body.equals(bytes)),
        'with the uploaded bytes',
      );
      // A waiter's own poll is every second; woken by the notice, all answer well before that.
      t.ok(took < 950, `all answered ${took} ms after they began waiting (before a 1 s poll)`);
    });

    t.test('one remote fetch for 20 concurrent requests on different connections', async (t) => {
      const before = await servedPerThread(r);
      const path = `/_matrix/client/v1/media/download/${peerName}/remote-${driver}`;
      const got = await Promise.all(Array.from({ length: 20 }, () => onNewConnection(r.port, 'GET', path)));
      t.same(
        got.map((a) => a.status),
        Array(20).fill(200),
        'all twenty answered 200',
      );
      t.ok(
        got.every((a) => a.body.equals(remoteBytes)),
        'with the remote bytes',
      );
      t.equal(peerHits, 1, 'the origin was asked once');
      const after = await servedPerThread(r);
      t.ok(after.filter((n, i) => n > before[i]!).length >= 2, 'the requests were served by several threads');
    });

    t.test('the blob cache byte bound holds across threads', async (t) => {
      const blobs = await inParallel(Array.from({ length: 12 }), 4, async (_, i) => {
        const bytes = randomBytes(80_000);
        const up = await onNewConnection(r.port, 'POST', uploadPath(`cache${i}.bin`), {
          body: bytes,
          headers: { 'Content-Type': 'application/x-test' },
        });
        return { id: idOf(up), bytes };
      });
      const metricsUrl = `http://127.0.0.1:${r.repo.metricsPort}/metrics`;
      const cached = async () => {
        const text = await (await fetch(metricsUrl)).text();
        const line = text.split('\n').find((l) => l.startsWith('media_cache_bytes{cache="media"}'));
        return Number(line?.split(' ')[1] ?? NaN);
      };
      let peak = 0;
      for (let round = 0; round < 4; round++) {
        await inParallel(blobs, 6, async (b) => {
          const a = await onNewConnection(r.port, 'GET', downloadPath(b.id));
          if (!a.body.equals(b.bytes)) throw new Error('wrong bytes');
        });
        peak = Math.max(peak, await cached());
      }
      t.ok(peak > 0, `the threads' caches hold content (${peak} bytes at most)`);
      t.ok(peak <= CACHE_BYTES, `never more than downloads.cache.maxSizeBytes in all (${peak} <= ${CACHE_BYTES})`);
    });

    t.test('the metrics page adds up every thread', async (t) => {
      const text = await (await fetch(`http://127.0.0.1:${r.repo.metricsPort}/metrics`)).text();
      const healthz = text
        .split('\n')
        .filter((l) => l.startsWith('media_http_responses_total{') && l.includes('action="healthz"'))
        .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
      t.equal(healthz, 80, 'the 80 /healthz requests of the first test, whichever thread served them');
      t.equal(
        text.split('\n').filter((l) => l.startsWith('process_resident_memory_bytes ')).length,
        1,
        'process figures once (the main thread reports them)',
      );
    });

    t.test('a config reload is seen by every thread', async (t) => {
      const file = join(r.dir, 'media-repo.yaml');
      const doc = yaml.load(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const homeservers = doc.homeservers as Record<string, unknown>[];
      const path = '/_matrix/client/v1/media/config';
      const before = await onNewConnection(r.port, 'GET', path, { headers: { Host: 'second.test' } });
      t.equal(before.status, 502, 'an unknown homeserver is not served (502, as MMR answers)');
      doc.homeservers = [...homeservers, { name: 'second.test', csApi: r.hs.url }];
      writeFileSync(file, yaml.dump(doc));
      await r.repo.reload();
      await new Promise((res) => setTimeout(res, 200)); // the threads apply it after the main thread
      const seen = await servedPerThread(r);
      r.hs.tokens.set(ALICE, { userId: '@alice:second.test' });
      const after = await Promise.all(
        Array.from({ length: 24 }, () => onNewConnection(r.port, 'GET', path, { headers: { Host: 'second.test' } })),
      );
      const now = await servedPerThread(r);
      t.same(
        after.map((a) => a.status),
        Array(24).fill(200),
        'every connection, whichever thread, serves the added homeserver',
      );
      t.equal(now.filter((n, i) => n > seen[i]!).length, THREADS, 'all four threads answered one of them');
      r.hs.tokens.set(ALICE, { userId: '@alice:media.test' });
    });

    t.test('a thread that dies stops the server cleanly, never half serving', async (t) => {
      let failure: Error | null = null;
      void r.repo.failed.then((e) => (failure = e));
      r.repo.internal.threads!.crashForTest(2);
      t.ok(await waitFor(() => failure !== null, 5000), 'the server reports the failed thread');
      t.match(String(failure), /HTTP thread 2 failed/);
      const ready = await onNewConnection(r.port, 'GET', '/readyz', { token: null });
      t.equal(ready.status, 503, '/readyz answers 503 on every remaining thread');
      t.ok(
        r.logs.some((l) => l.includes('an HTTP thread died')),
        'the death is logged',
      );
      await r.repo.stop(2000);
      t.pass('the server stops (and this process goes on)');
    });
  });
}

t.test('one rate-limit budget per client across threads', async (t) => {
  const r = await startTestRepo('pglite', {
    repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'debug', shutdownGraceSeconds: 0, httpThreads: THREADS },
    // 0.5 tokens a second: nothing refills noticeably while the burst goes out.
    rateLimit: { enabled: true, requestsPerSecond: 0.5, burst: 10 },
  });
  t.teardown(() => r.close());
  const before = await servedPerThread(r);
  const got = await inParallel(Array.from({ length: 40 }), 4, () =>
    onNewConnection(r.port, 'GET', '/_matrix/client/v1/media/config'),
  );
  const after = await servedPerThread(r);
  const ok = got.filter((a) => a.status === 200).length;
  t.ok(after.filter((n, i) => n > before[i]!).length >= 3, 'the requests reached at least three threads');
  t.ok(
    ok >= 10 && ok <= 11,
    `the burst of 10 (and at most one refilled token) is the budget for all threads: ${ok} of 40 admitted`,
  );
  const refused = got.find((a) => a.status === 429)!;
  t.equal(
    (JSON.parse(refused.body.toString()) as { errcode: string }).errcode,
    'M_LIMIT_EXCEEDED',
    'the rest get 429 M_LIMIT_EXCEEDED',
  );
});

t.test('SIGTERM with uploads in flight on several threads: all answered, none lost', async (t) => {
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-threads-'));
  await seedPglite(join(dir, 'db'));
  const port = await freePort();
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    yaml.dump(
      testConfig(dir, hs.url, '', {
        repo: {
          bindAddress: '127.0.0.1',
          port,
          logLevel: 'info',
          jsonLogs: true,
          shutdownGraceSeconds: 1,
          shutdownDrainSeconds: 8,
          httpThreads: THREADS,
        },
      }),
    ),
  );
  const { child, output } = await spawnRepo(file);
  const exited = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await hs.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const lines = () =>
    output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  // Twelve uploads, each on its own connection: headers and half the body now, the rest later.
  const SIZE = 200_000;
  const uploads = Array.from({ length: 12 }, () => {
    const bytes = randomBytes(SIZE);
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((res) => sock.on('close', () => res()));
    sock.on('error', () => undefined);
    sock.write(
      `POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: ${SERVER_NAME}\r\nAuthorization: Bearer ${ALICE}\r\n` +
        `Content-Type: application/x-test\r\nContent-Length: ${SIZE}\r\n\r\n`,
    );
    sock.write(bytes.subarray(0, SIZE / 2));
    return { bytes, sock, answer: () => Buffer.concat(chunks).toString('latin1'), closed };
  });
  await new Promise((res) => setTimeout(res, 500));
  child.kill('SIGTERM');
  t.ok(
    await waitFor(
      () => lines().some((l) => l.msg === 'shutdown: stopped accepting connections, draining requests'),
      10_000,
    ),
    'the drain began',
  );
  const draining = lines().filter(
    (l) => l.msg === 'shutdown: stopped accepting connections, draining requests' && Number(l.inFlight) > 0,
  );
  t.ok(
    new Set(draining.map((l) => l.thread ?? 0)).size >= 2,
    `uploads were in flight on several threads (${draining.map((l) => `${String(l.thread ?? 0)}:${String(l.inFlight)}`).join(', ')})`,
  );
  // write, not end: a half-closed connection is a client gone, to uWS as to nginx.
  for (const u of uploads) u.sock.write(u.bytes.subarray(SIZE / 2));
  // Answered during the drain with Connection: close, so the server closes each connection.
  await Promise.all(uploads.map((u) => u.closed));
  const ids = uploads.map((u) => {
    const a = u.answer();
    const status = Number(a.split(' ')[1]);
    return status === 200 ? /"content_uri":"mxc:\/\/[^/]+\/([^"]+)"/.exec(a)?.[1] : `status ${status}`;
  });
  t.ok(
    ids.every((id) => id && !id.startsWith('status')),
    `every upload in flight was answered 200 (${ids.join(', ')})`,
  );
  t.equal(await exited, 0, 'the process exits 0 after the drain');

  // Restarted: every acknowledged upload is there, byte for byte.
  const again = await spawnRepo(file);
  t.teardown(() => void again.child.kill('SIGKILL'));
  for (const [i, id] of ids.entries()) {
    const a = await onNewConnection(port, 'GET', downloadPath(id!));
    t.ok(a.status === 200 && a.body.equals(uploads[i]!.bytes), `upload ${i} is there after the restart`);
  }
  again.child.kill('SIGTERM');
});
