import t from 'tap';
import { ALICE, startTestRepo } from './helpers/repo.js';
import { RawConn } from './helpers/hostile-http.js';
import { assertNothingStored, snapshot, stagingFiles, waitFor } from './helpers/hostile-store.js';

// Issue 16, slow clients: a connection whose request head or upload body stops arriving is
// closed (uWS 20.30's HTTP idle timeout, about 10 s without a byte while a request is being
// received; not configurable in this build), the server keeps serving others meanwhile, and a
// stalled upload leaves no staging file and no row.

/** Longer than uWS's idle timeout (10 s, checked on a 4 s timer) with room to spare. */
const CUT_OFF_WITHIN_MS = 30_000;

t.test('a request head that stalls is closed; others are served meanwhile', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  const c = await RawConn.open(r.port);
  t.teardown(() => c.destroy());
  await c.write('GET /healthz HTTP/1.1\r\nHost: media.test\r\nX-Slow: '); // and nothing more
  t.equal((await r.fetch('/healthz')).status, 200, 'another client is served while it stalls');
  const stalled = Date.now();
  t.ok(await c.waitClosed(CUT_OFF_WITHIN_MS), 'the stalled connection is closed');
  t.comment(`closed ${Date.now() - stalled} ms after the head stalled`);
  t.equal(c.responses.length, 0, 'without an answer');
  t.equal((await r.fetch('/healthz')).status, 200, 'the server still serves');
});

t.test('an upload whose body stalls is closed and leaves nothing behind', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  const db = r.repo.services.db;
  const before = await snapshot(db, r.mediaDir);
  const c = await RawConn.open(r.port);
  t.teardown(() => c.destroy());
  await c.head('POST', '/_matrix/media/v3/upload', {
    Host: 'media.test',
    Authorization: `Bearer ${ALICE}`,
    'Content-Type': 'application/octet-stream',
    'Content-Length': 1_000_000,
  });
  await c.write(Buffer.alloc(64 * 1024, 1)); // a part, then nothing
  t.ok(await waitFor(() => stagingFiles(r.mediaDir).length > 0, 5000), 'the upload reached staging');
  const up = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    headers: { 'Content-Type': 'text/plain' },
    body: 'another upload meanwhile',
  });
  t.equal(up.status, 200, 'another upload is served while it stalls');
  const after = await snapshot(db, r.mediaDir);
  const stalled = Date.now();
  t.ok(await c.waitClosed(CUT_OFF_WITHIN_MS), 'the stalled upload is closed');
  t.comment(`closed ${Date.now() - stalled} ms after the body stalled`);
  await assertNothingStored(t, db, r.mediaDir, after, 'stalled upload');
  t.equal(after.rows, before.rows + 1, 'only the other upload was stored');
});

// Slowloris: a byte now and then keeps many servers' idle timers from firing. uWS resets its
// timer only after 16 KiB have arrived, so a trickle is cut off like a stall.
t.test('a request head that trickles in a byte at a time is closed too', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  const c = await RawConn.open(r.port);
  t.teardown(() => c.destroy());
  await c.write('GET /healthz HTTP/1.1\r\nHost: media.test\r\nX-Slow: ');
  const trickle = setInterval(() => void c.write('a').catch(() => undefined), 1000);
  t.teardown(() => clearInterval(trickle));
  t.ok(await c.waitClosed(CUT_OFF_WITHIN_MS), 'the trickling connection is closed');
  clearInterval(trickle);
  t.equal(c.responses.length, 0, 'without an answer');
  t.equal((await r.fetch('/healthz')).status, 200, 'the server still serves');
});
