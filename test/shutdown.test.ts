import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ALICE, SERVER_NAME, freePort, spawnRepo, testConfig } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { seedPglite } from './helpers/pglite-template.js';
import { rawRequest } from './helpers/hostile-http.js';
import { waitFor } from './helpers/hostile-store.js';

// issue-13: SIGTERM through the real CLI with slow downloads in flight. The stop has three
// phases, each seen from outside: a grace period in which /readyz answers 503 while new
// connections are still accepted (so load balancers see it), then the listener closes
// (new connections refused) and in-flight requests drain, then what is still running is cut
// off and logged with its method, path, request ID, bytes sent and duration.

// Large enough that a client that stops reading leaves the server blocked on backpressure
// (loopback socket buffers take a few MiB), so the download really is in flight.
const SIZE = 24 * 1024 * 1024;
const GRACE_S = 4;
const DRAIN_S = 5;

interface SlowDownload {
  sock: Socket;
  received: () => Buffer;
  closed: () => boolean;
}

/** Sends a GET and reads only its first bytes, then stops reading (the socket is paused). */
function slowDownload(port: number, path: string): Promise<SlowDownload> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: ${SERVER_NAME}\r\nAuthorization: Bearer ${ALICE}\r\n\r\n`);
    });
    sock.once('data', () => {
      sock.pause();
      resolve({ sock, received: () => Buffer.concat(chunks), closed: () => closed });
    });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('close', () => {
      closed = true;
    });
    sock.on('error', reject);
  });
}

function body(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A fresh TCP connection: 'refused', or 'accepted' (then closed again). */
function tryConnect(port: number): Promise<'accepted' | 'refused' | string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve('accepted');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? e.message)));
  });
}

t.test(
  'issue-13: SIGTERM: /readyz 503 during the grace period, then refuse, drain, and log what is cut off',
  async (t) => {
    const hs = await startFixtureHomeserver();
    hs.tokens.set(ALICE, { userId: '@alice:media.test' });
    const dir = mkdtempSync(join(tmpdir(), 'media-repo-shutdown-'));
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
            shutdownGraceSeconds: GRACE_S,
            shutdownDrainSeconds: DRAIN_S,
          },
          // Downloads stream from the datastore (the in-memory cache would hand uWS the whole body).
          downloads: { cache: { enabled: false } },
        }),
      ),
    );
    const { child, output } = await spawnRepo(file);
    // 'close', not 'exit': the last lines of output may still be in the pipe at 'exit'.
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
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
    const logged = (msg: string) => lines().some((l) => l.msg === msg);

    const upload = async (bytes: Buffer) => {
      const res = await fetch(`http://127.0.0.1:${port}/_matrix/media/v3/upload`, {
        method: 'POST',
        body: new Uint8Array(bytes),
        headers: {
          'X-Forwarded-Host': SERVER_NAME,
          Authorization: `Bearer ${ALICE}`,
          'Content-Type': 'application/octet-stream',
        },
      });
      t.equal(res.status, 200, 'uploaded');
      return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    };
    const finishing = randomBytes(SIZE);
    const stalled = randomBytes(SIZE);
    const pathOf = (id: string) => `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
    const finishingPath = pathOf(await upload(finishing));
    const stalledPath = pathOf(await upload(stalled));

    const a = await slowDownload(port, finishingPath);
    const b = await slowDownload(port, stalledPath);
    child.kill('SIGTERM');

    // Phase 1, grace: still accepting, but not ready.
    t.ok(await waitFor(() => logged('shutdown: grace period, /readyz answers 503'), 10_000), 'the grace period began');
    const ready = await rawRequest(port, 'GET', '/readyz', { Host: SERVER_NAME });
    t.equal(ready.status, 503, '/readyz answers 503 on a new connection during the grace period');
    t.match(JSON.parse(ready.body.toString()), { ready: false, status: 'shutting down' });
    t.equal(
      (await rawRequest(port, 'GET', '/healthz', { Host: SERVER_NAME })).status,
      200,
      'other requests on new connections are still served',
    );
    t.notOk(
      logged('shutdown: stopped accepting connections, draining requests'),
      'the listener was still open for those',
    );

    // Phase 2, drain: new connections are refused, in-flight downloads go on.
    t.ok(
      await waitFor(() => logged('shutdown: stopped accepting connections, draining requests'), (GRACE_S + 10) * 1000),
      'the listener closed after the grace period',
    );
    t.equal(await tryConnect(port), 'refused', 'a new connection is refused once the grace period is over');
    a.sock.resume();
    t.ok(
      await waitFor(() => body(a.received()).length >= SIZE, (DRAIN_S + 10) * 1000),
      'the download that was read on finished',
    );
    t.equal(sha(body(a.received())), sha(finishing), 'with every byte');

    // Phase 3: what is still running when the drain ends is cut off, and logged.
    t.equal(await exited, 0, 'the process exits 0');
    // A paused socket reports its end only once what it holds is read: read it all now.
    b.sock.resume();
    t.ok(await waitFor(() => b.closed(), 10_000), 'the stalled download was closed');
    t.ok(body(b.received()).length < SIZE, `the stalled download got ${body(b.received()).length} of ${SIZE} bytes`);
    const cut = lines().filter((l) => l.msg === 'request cut off at shutdown');
    t.equal(cut.length, 1, `one request cut off: ${JSON.stringify(cut)}`);
    t.match(cut[0], {
      level: 'warn',
      method: 'GET',
      path: stalledPath,
      requestId: /^REQ-/,
      bytesSent: Number,
      ms: Number,
      status: 200,
    });
    t.ok((cut[0]?.bytesSent as number) < SIZE, 'bytes sent is what went out before the cut');
    t.ok((cut[0]?.ms as number) >= 0);
  },
);
