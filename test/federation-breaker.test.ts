import t from 'tap';
import { createServer } from 'node:http';
import { ALICE, ONE_THREAD, freePort } from './helpers/repo.js';
import { startFederatingServer } from './helpers/federation.js';

// A peer that is down: after federation.backoffAt failures the breaker opens (requests fail
// fast without touching the network), then it lets a request through again and recovers.

t.test('per-server breaker, and ignored hosts', async (t) => {
  const b = await startFederatingServer('pglite', {
    // One thread: the breaker's window is shortened below in the main thread's state object.
    repo: ONE_THREAD,
    federation: { allowedNetworks: ['127.0.0.1/32'], backoffAt: 2, ignoredHosts: ['127.0.0.1:9'] },
    downloads: { failureCacheMinutes: 0 },
    timeouts: { federationTimeoutSeconds: 2 },
  });
  t.teardown(() => b.close());
  // A breaker that opens for 1.5 s: the running repo's state object is shared by every pipeline
  // that fetches remote media, so its window is changed in place.
  (b.repo.repo.services.remoteState as unknown as { openMs: number }).openMs = 1500;
  const port = await freePort();
  const origin = `127.0.0.1:${port}`;
  const get = (id: string, o = origin) =>
    b.repo.fetch(`/_matrix/client/v1/media/download/${o}/${id}`, { token: ALICE });

  const ignored = await get('anything', '127.0.0.1:9');
  t.equal(ignored.status, 404, 'ignored hosts are never asked');

  for (let i = 0; i < 2; i++) t.equal((await get(`down${i}`)).status, 502, `failure ${i + 1} while the peer is down`);
  const open = await get('down3');
  t.equal(open.status, 502);
  t.match(((await open.json()) as { error: string }).error, /failed repeatedly/, 'the breaker answers without trying');

  let hits = 0;
  const peer = createServer((req, res) => {
    hits++;
    if (req.url!.startsWith('/_matrix/federation/')) {
      res
        .writeHead(404, { 'Content-Type': 'application/json' })
        .end('{"errcode":"M_UNRECOGNIZED","error":"old server"}');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('back again');
  });
  await new Promise<void>((r) => peer.listen(port, '127.0.0.1', r));
  t.teardown(() => {
    peer.closeAllConnections();
    peer.close();
  });
  t.equal((await get('down4')).status, 502, 'still open just after the peer came back');
  t.equal(hits, 0, 'no request reached the peer while open');
  await new Promise((r) => setTimeout(r, 1600));
  const back = await get('up');
  t.equal(back.status, 200, 'half-open: the next request goes through and succeeds');
  t.equal(await back.text(), 'back again');
  t.ok(hits >= 1);
});
