import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { drivers } from './helpers/databases.js';
import { ALICE, BOB, GUEST, ONE_THREAD, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';

// MSC2246 asynchronous uploads: POST /create reserves an mxc, PUT fills it, and downloads
// of a pending ID wait (up to timeout_ms) for the PUT.

const MXC = new RegExp(`^mxc://${SERVER_NAME.replace('.', '\\.')}/([A-Za-z0-9_-]{24})$`);
type Err = { errcode: string; error: string };
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function create(r: TestRepo, token = ALICE): Promise<Response> {
  return r.fetch('/_matrix/media/v1/create', {
    method: 'POST',
    token,
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
}

async function createId(t: Tap, r: TestRepo, token = ALICE): Promise<string> {
  const res = await create(r, token);
  t.equal(res.status, 200, 'create succeeds');
  const body = (await res.json()) as { content_uri: string };
  return MXC.exec(body.content_uri)![1]!;
}

function put(r: TestRepo, id: string, body: Buffer | null, token = ALICE, server = SERVER_NAME): Promise<Response> {
  return r.fetch(`/_matrix/media/v3/upload/${server}/${id}`, {
    method: 'PUT',
    token,
    headers: { 'Content-Type': 'application/x-test' },
    body: body === null ? undefined : new Uint8Array(body),
  });
}

async function expectError(t: Tap, res: Response, status: number, errcode: string, msg: string): Promise<void> {
  t.equal(res.status, status, `${msg}: status`);
  t.equal(((await res.json()) as Err).errcode, errcode, `${msg}: errcode`);
}

const authed = (id: string, q = '') => `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}${q}`;
const legacy = (id: string, q = '') => `/_matrix/media/v3/download/${SERVER_NAME}/${id}${q}`;

for (const d of drivers()) {
  t.test(`async upload (${d.name})`, { skip: d.skip }, async (t) => {
    // One thread: a test below counts the waiters parked on the reservation.
    const r = await startTestRepo(d.name, {
      repo: ONE_THREAD,
      uploads: { minBytes: 1, maxPending: 0, maxAgeSeconds: 600 },
    });
    t.teardown(() => r.close());

    t.test('create returns an mxc and an expiry of now + maxAgeSeconds', async (t) => {
      const before = Date.now();
      const res = await create(r);
      t.equal(res.status, 200);
      const body = (await res.json()) as { content_uri: string; unused_expires_at: number };
      t.match(body.content_uri, MXC);
      t.type(body.unused_expires_at, 'number');
      t.ok(
        body.unused_expires_at >= before + 600_000 && body.unused_expires_at <= Date.now() + 600_000,
        `unused_expires_at ${body.unused_expires_at} is about now + 600 s`,
      );
      const bodyless = await r.fetch('/_matrix/media/v1/create', { method: 'POST', token: ALICE });
      t.equal(bodyless.status, 200, 'an empty body is accepted too');
      t.match(((await bodyless.json()) as { content_uri: string }).content_uri, MXC);
    });

    t.test('a pending ID answers 504 M_NOT_YET_UPLOADED after timeout_ms', async (t) => {
      const id = await createId(t, r);
      await expectError(t, await r.fetch(legacy(id, '?timeout_ms=300')), 504, 'M_NOT_YET_UPLOADED', 'legacy');
      await expectError(
        t,
        await r.fetch(authed(id, '?timeout_ms=300'), { token: ALICE }),
        504,
        'M_NOT_YET_UPLOADED',
        'authenticated',
      );
    });

    t.test('a waiting download is woken by the PUT', async (t) => {
      const id = await createId(t, r);
      const bytes = randomBytes(40_000);
      const started = Date.now();
      const waiting = r.fetch(authed(id, '?timeout_ms=10000'), { token: BOB });
      // Wait until the download is parked on the reservation (not a fixed sleep).
      const waiters = r.repo.services.waiters;
      for (let i = 0; i < 250 && waiters.size() === 0; i++) await new Promise((res) => setTimeout(res, 20));
      t.equal(waiters.size(), 1, 'the download is waiting for the upload');
      const p = await put(r, id, bytes);
      t.equal(p.status, 200);
      t.same(await p.json(), {});
      const dl = await waiting;
      const elapsed = Date.now() - started;
      t.equal(dl.status, 200);
      t.equal(dl.headers.get('content-type'), 'application/x-test');
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(bytes), 'waiter gets the uploaded bytes');
      t.ok(elapsed < 5000, `waiter resolved after ${elapsed} ms, well before its 10 s timeout`);
      t.equal(waiters.size(), 0, 'no waiter left behind');
    });

    t.test('PUT: 200, then 409 on a second PUT, also without a body', async (t) => {
      const id = await createId(t, r);
      const bytes = randomBytes(1000);
      const first = await put(r, id, bytes);
      t.equal(first.status, 200);
      t.same(await first.json(), {});
      const refused = randomBytes(10);
      await expectError(t, await put(r, id, refused), 409, 'M_CANNOT_OVERWRITE_MEDIA', 'second PUT');
      const h = createHash('sha256').update(refused).digest('hex');
      t.notOk(existsSync(join(r.mediaDir, h.slice(0, 2), h.slice(2, 4), h)), 'the refused bytes left no blob');
      await expectError(t, await put(r, id, null), 409, 'M_CANNOT_OVERWRITE_MEDIA', 'second PUT without a body');
      const dl = await r.fetch(authed(id), { token: ALICE });
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(bytes), 'the first upload is kept');
    });

    t.test('PUT refusals: other user, unknown ID, wrong server, expired', async (t) => {
      const id = await createId(t, r);
      await expectError(t, await put(r, id, randomBytes(10), BOB), 403, 'M_FORBIDDEN', 'another user');
      await expectError(t, await put(r, 'AAAAAAAAAAAAAAAAAAAAAAAA', randomBytes(10)), 404, 'M_NOT_FOUND', 'unknown ID');
      await expectError(
        t,
        await put(r, id, randomBytes(10), ALICE, 'other.example'),
        404,
        'M_NOT_FOUND',
        'wrong server name',
      );

      await r.repo.services.db.query(
        'UPDATE media_reservations SET expires_ts = 0 WHERE origin = $1 AND media_id = $2',
        [SERVER_NAME, id],
      );
      await expectError(t, await put(r, id, randomBytes(10)), 404, 'M_NOT_FOUND', 'expired reservation');
      await expectError(
        t,
        await r.fetch(authed(id, '?timeout_ms=300'), { token: ALICE }),
        404,
        'M_NOT_FOUND',
        'download of an expired ID',
      );
    });

    t.test('check order: other user wins over 409 and over expiry', async (t) => {
      const done = await createId(t, r);
      t.equal((await put(r, done, randomBytes(10))).status, 200);
      await expectError(
        t,
        await put(r, done, randomBytes(10), BOB),
        403,
        'M_FORBIDDEN',
        'other user into an uploaded ID',
      );

      const expired = await createId(t, r);
      await r.repo.services.db.query(
        'UPDATE media_reservations SET expires_ts = 0 WHERE origin = $1 AND media_id = $2',
        [SERVER_NAME, expired],
      );
      await expectError(
        t,
        await put(r, expired, randomBytes(10), BOB),
        403,
        'M_FORBIDDEN',
        'other user into an expired ID',
      );
    });

    t.test('timeout_ms validation and cap', async (t) => {
      const id = await createId(t, r);
      t.equal((await put(r, id, Buffer.from('timeout test'))).status, 200);
      await expectError(
        t,
        await r.fetch(authed(id, '?timeout_ms=abc'), { token: ALICE }),
        400,
        'M_INVALID_PARAM',
        'timeout_ms=abc',
      );
      await expectError(
        t,
        await r.fetch(authed(id, '?timeout_ms=-5'), { token: ALICE }),
        400,
        'M_INVALID_PARAM',
        'timeout_ms=-5',
      );
      const big = await r.fetch(authed(id, '?timeout_ms=999999999'), { token: ALICE });
      t.equal(big.status, 200, 'a huge timeout_ms is accepted (capped)');
      t.equal(await big.text(), 'timeout test');
    });

    t.test('guests may not create', async (t) => {
      await expectError(t, await create(r, GUEST), 403, 'M_GUEST_ACCESS_FORBIDDEN', 'guest create');
      await expectError(
        t,
        await r.fetch('/_matrix/media/v1/create', { method: 'POST' }),
        401,
        'M_MISSING_TOKEN',
        'no token',
      );
    });
  });

  t.test(`async upload limits (${d.name})`, { skip: d.skip }, async (t) => {
    const r = await startTestRepo(d.name, { uploads: { minBytes: 1, maxPending: 2, maxAgeSeconds: 120 } });
    t.teardown(() => r.close());

    t.test('maxPending: the third pending create is 429 with Retry-After', async (t) => {
      const a = await createId(t, r);
      await createId(t, r);
      const third = await create(r);
      t.equal(third.status, 429);
      const retry = Number(third.headers.get('retry-after'));
      t.ok(
        Number.isInteger(retry) && retry >= 1 && retry <= 120,
        `Retry-After ${third.headers.get('retry-after')} is 1..120 s`,
      );
      const body = (await third.json()) as Err & { retry_after_ms: number };
      t.equal(body.errcode, 'M_LIMIT_EXCEEDED');
      t.ok(body.retry_after_ms > 0 && body.retry_after_ms <= 120_000, 'retry_after_ms within the reservation lifetime');

      t.equal((await create(r, BOB)).status, 200, 'the limit is per user');
      t.equal((await put(r, a, randomBytes(10))).status, 200);
      t.equal((await create(r)).status, 200, 'finishing an upload frees a slot');
    });
  });
}
