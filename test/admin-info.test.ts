// MMR's read-only information endpoints over real HTTP: media info (dimensions read on the image
// pool, stored thumbnails listed), the usage reports (exact numbers for known uploads), the
// Synapse-style users-stats (ordering both ways, paging, literal search, bad parameters; on
// both drivers), per-MXC upload records, and the federation test against a local fixture server.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { drivers, type DriverName } from './helpers/databases.js';
import { ALICE, BOB, SECRET, SERVER_NAME, freePort, startTestRepo, type TestRepo } from './helpers/repo.js';
import { dims, png } from './helpers/images.js';

// Federation test fixtures listen on loopback over plain HTTP, as test/helpers/federation.ts does.
process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION = 'true';

const INFO = '/_matrix/media/unstable/info';
const ADMIN = '/_matrix/media/unstable/admin';
const ADMIN_T2BOT = '/_matrix/media/unstable/io.t2bot.media/admin';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let bodySeq = 0;
/** n bytes that no earlier call returned: a counter in the first byte, random bytes after it. */
const distinctBody = (n: number): Buffer => {
  const b = randomBytes(n);
  b[0] = bodySeq++ % 256;
  return b;
};

interface Uploaded {
  id: string;
  body: Buffer;
  user: string;
  contentType: string;
  name: string;
}

async function upload(r: TestRepo, token: string, body: Buffer, contentType: string, name: string): Promise<string> {
  const res = await r.fetch(`/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': contentType },
    token,
  });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

/** A JSON answer, read field by field below (the assertions are the type checks). */
type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function getJson(r: TestRepo, path: string, token: string | null): Promise<{ status: number; body: Body }> {
  const res = await r.fetch(path, { token });
  return { status: res.status, body: (await res.json()) as Body };
}

async function expectError(t: Test, r: TestRepo, path: string, token: string | null, status: number, errcode: string) {
  const got = await getJson(r, path, token);
  t.equal(got.status, status, `${path}: status`);
  t.equal(got.body.errcode, errcode, `${path}: errcode`);
  return got.body;
}

// ---- users-stats, on both drivers ----

const STATS_USERS = {
  pct: { token: 'pct-token', userId: '@a%b:media.test', sizes: [10] },
  under: { token: 'under-token', userId: '@a_b:media.test', sizes: [5, 5] },
  x: { token: 'x-token', userId: '@axb:media.test', sizes: [1, 1, 1] },
};

const ids = (body: Body) => (body.users as { user_id: string }[]).map((u) => u.user_id);
const STATS = `${ADMIN}/usage/${SERVER_NAME}/users-stats`;

async function statsTests(t: Test, r: TestRepo, sizes: { alice: number; bob: number }): Promise<void> {
  t.test('roles: no token 401, plain user 403, local admin own server only, repo admin any', async (t) => {
    await expectError(t, r, STATS, null, 401, 'M_MISSING_TOKEN');
    await expectError(t, r, STATS, ALICE, 403, 'M_FORBIDDEN');
    t.equal((await getJson(r, STATS, SECRET)).status, 200);
    // An admin of the Host's homeserver: its own server's statistics, nobody else's.
    r.hs.tokens.set('hsadmin-token', { userId: '@hsadmin:media.test' });
    r.hs.admins.add('@hsadmin:media.test');
    const own = await getJson(r, STATS, 'hsadmin-token');
    t.equal(own.status, 200, 'local admin, own server');
    t.equal(own.body.total, 5);
    const other = await expectError(
      t,
      r,
      `${ADMIN}/usage/other.example/users-stats`,
      'hsadmin-token',
      403,
      'M_FORBIDDEN',
    );
    t.equal(other.error, 'Local admins may only see the statistics of their own server');
    t.equal((await getJson(r, `${ADMIN}/usage/other.example/users-stats`, SECRET)).status, 200, 'repo admin, any');
    await expectError(t, r, `${ADMIN}/usage/${SERVER_NAME}`, 'hsadmin-token', 403, 'M_FORBIDDEN');
  });

  t.test('default order: user_id ascending, every field', async (t) => {
    const { status, body } = await getJson(r, STATS, SECRET);
    t.equal(status, 200);
    t.same(Object.keys(body).sort(), ['total', 'users'], 'no next_token when everything fits');
    t.equal(body.total, 5);
    t.same(ids(body), [
      '@a%b:media.test',
      '@a_b:media.test',
      '@alice:media.test',
      '@axb:media.test',
      '@bob:media.test',
    ]);
    const alice = body.users[2];
    t.same(alice, {
      user_id: '@alice:media.test',
      displayname: '@alice:media.test',
      media_count: 2,
      media_length: sizes.alice,
    });
    t.same(body.users[0], {
      user_id: '@a%b:media.test',
      displayname: '@a%b:media.test',
      media_count: 1,
      media_length: 10,
    });
  });

  t.test('order_by media_count, both directions (ties by user ID)', async (t) => {
    const f = await getJson(r, `${STATS}?order_by=media_count&dir=f`, SECRET);
    t.same(ids(f.body), [
      '@a%b:media.test',
      '@bob:media.test',
      '@a_b:media.test',
      '@alice:media.test',
      '@axb:media.test',
    ]);
    t.same(
      f.body.users.map((u: { media_count: number }) => u.media_count),
      [1, 1, 2, 2, 3],
    );
    const b = await getJson(r, `${STATS}?order_by=media_count&dir=b`, SECRET);
    t.same(ids(b.body), ids(f.body).reverse());
  });

  t.test('order_by media_length, both directions', async (t) => {
    const f = await getJson(r, `${STATS}?order_by=media_length`, SECRET);
    const lengths = f.body.users.map((u: { media_length: number }) => u.media_length);
    t.same(
      lengths,
      [...lengths].sort((a: number, b: number) => a - b),
      'ascending',
    );
    t.equal(f.body.users[0].user_id, '@axb:media.test', '3 bytes is the least');
    const b = await getJson(r, `${STATS}?order_by=media_length&dir=b`, SECRET);
    t.same(ids(b.body), ids(f.body).reverse());
  });

  t.test('paging with next_token until no token comes back', async (t) => {
    const seen: string[] = [];
    const tokens: unknown[] = [];
    let from: number | undefined = 0;
    while (from !== undefined) {
      const { status, body } = await getJson(r, `${STATS}?limit=2&from=${from}`, SECRET);
      t.equal(status, 200);
      t.equal(body.total, 5);
      seen.push(...ids(body));
      tokens.push(body.next_token);
      from = body.next_token as number | undefined;
    }
    t.same(tokens, [2, 4, undefined]);
    t.same(seen, ['@a%b:media.test', '@a_b:media.test', '@alice:media.test', '@axb:media.test', '@bob:media.test']);
    const back = await getJson(r, `${STATS}?limit=2&dir=b`, SECRET);
    t.same(ids(back.body), ['@bob:media.test', '@axb:media.test']);
    t.equal(back.body.next_token, 2);
  });

  t.test('search_term matches literally: % and _ are not wildcards', async (t) => {
    const pct = await getJson(r, `${STATS}?search_term=${encodeURIComponent('a%b')}`, SECRET);
    t.same(ids(pct.body), ['@a%b:media.test']);
    t.equal(pct.body.total, 1);
    const under = await getJson(r, `${STATS}?search_term=a_b`, SECRET);
    t.same(ids(under.body), ['@a_b:media.test']);
    const slash = await getJson(r, `${STATS}?search_term=${encodeURIComponent('\\')}`, SECRET);
    t.same(slash.body, { users: [], total: 0 });
    const sub = await getJson(r, `${STATS}?search_term=li`, SECRET);
    t.same(ids(sub.body), ['@alice:media.test'], 'a substring of the user ID');
  });

  t.test('from_ts and until_ts bound creation_ts', async (t) => {
    const db = r.repo.services.db;
    await db.query('UPDATE media SET creation_ts = 1000 WHERE user_id = $1', [STATS_USERS.x.userId]);
    const { body } = await getJson(r, `${STATS}?from_ts=0&until_ts=2000`, SECRET);
    t.same(body.users, [
      { user_id: '@axb:media.test', displayname: '@axb:media.test', media_count: 3, media_length: 3 },
    ]);
    const later = await getJson(r, `${STATS}?from_ts=2000`, SECRET);
    t.equal(later.body.total, 4);
  });

  t.test('bad parameters: 400 M_INVALID_PARAM with the exact message', async (t) => {
    const cases: [string, string][] = [
      ['limit=x', "limit: expected a positive integer, got 'x'"],
      ['limit=0', "limit: expected a positive integer, got '0'"],
      ['from=-1', "from: expected a non-negative integer, got '-1'"],
      ['order_by=size', "order_by: expected one of 'media_count', 'media_length', 'user_id', got 'size'"],
      ['dir=up', "dir: expected 'f' or 'b', got 'up'"],
      ['from_ts=x', "from_ts: expected a non-negative integer, got 'x'"],
      ['from_ts=10&until_ts=5', "until_ts: expected a timestamp greater than from_ts, got '5'"],
      ['search_term=', "search_term: expected a non-empty string, got ''"],
    ];
    for (const [q, message] of cases) {
      const body = await expectError(t, r, `${STATS}?${q}`, SECRET, 400, 'M_INVALID_PARAM');
      t.equal(body.error, message, q);
    }
  });

  t.test('limit is capped at 50 (MMR), other prefix answers too', async (t) => {
    const { status, body } = await getJson(r, `${ADMIN_T2BOT}/usage/${SERVER_NAME}/users-stats?limit=1000`, SECRET);
    t.equal(status, 200);
    t.equal(body.users.length, 5);
    t.notOk('next_token' in body);
  });
}

async function startWithStats(driver: DriverName) {
  const r = await startTestRepo(driver, {
    thumbnails: { pregenerate: false },
    federation: { allowedNetworks: ['127.0.0.1/32'] },
  });
  const uploads: Uploaded[] = [];
  const add = async (token: string, user: string, body: Buffer, contentType: string, name: string) => {
    uploads.push({ id: await upload(r, token, body, contentType, name), body, user, contentType, name });
  };
  await add(ALICE, '@alice:media.test', await png(600, 400), 'image/png', 'a.png');
  await add(ALICE, '@alice:media.test', Buffer.from('hello'), 'text/plain', 'hello.txt');
  await add(BOB, '@bob:media.test', await png(300, 200, 1), 'image/png', 'b.png');
  // alice: 2 uploads, bob: 1, and STATS_USERS: five uploaders with known counts and bytes.
  for (const u of Object.values(STATS_USERS)) {
    r.hs.tokens.set(u.token, { userId: u.userId });
    // Distinct bodies on purpose: a user's identical re-upload is answered with their earlier MXC, so two
    // random 1-byte bodies that happened to match would make one upload fewer than counted (a CI flake).
    for (const n of u.sizes) {
      await add(u.token, u.userId, distinctBody(n), 'application/octet-stream', 'f.bin');
    }
  }
  const total = (u: string) => uploads.filter((x) => x.user === u).reduce((n, x) => n + x.body.length, 0);
  return { r, uploads, sizes: { alice: total('@alice:media.test'), bob: total('@bob:media.test') } };
}

const pg = drivers().find((d) => d.name === 'postgres')!;
t.test('users-stats (postgres)', { skip: pg.skip }, async (t) => {
  const { r, sizes } = await startWithStats('postgres');
  t.teardown(() => r.close());
  await statsTests(t, r, sizes);
});

// ---- everything, on PGlite ----

t.test('information endpoints (pglite)', async (t) => {
  const { r, uploads, sizes } = await startWithStats('pglite');
  t.teardown(() => r.close());
  const [image, text, bobImage] = uploads as [Uploaded, Uploaded, Uploaded];
  const svc = r.repo.services;
  // First, while the numbers are the seed's (later tests add a quarantined upload).
  t.test('users-stats', (t) => statsTests(t, r, sizes));

  t.test('media info: an image, before and after a thumbnail is stored', async (t) => {
    const path = `${INFO}/${SERVER_NAME}/${image.id}`;
    await expectError(t, r, path, null, 401, 'M_MISSING_TOKEN');
    const before = await getJson(r, path, BOB);
    t.equal(before.status, 200, "any user may ask about anyone's media");
    t.same(before.body, {
      content_uri: `mxc://${SERVER_NAME}/${image.id}`,
      content_type: 'image/png',
      width: 600,
      height: 400,
      size: image.body.length,
      hashes: { sha256: sha(image.body) },
    });
    t.notOk('thumbnails' in before.body, 'no thumbnails key while none is stored (MMR)');

    const th = await r.fetch(
      `/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${image.id}?width=96&height=96&method=crop`,
      { token: ALICE },
    );
    t.equal(th.status, 200);
    const thumbBytes = Buffer.from(await th.arrayBuffer());
    await svc.freshThumbnails.drain();
    const d = await dims(thumbBytes);
    const after = await getJson(r, `/_matrix/media/unstable/io.t2bot.media/info/${SERVER_NAME}/${image.id}`, ALICE);
    t.equal(after.status, 200);
    t.same(after.body.thumbnails, [
      {
        width: d.width,
        height: d.height,
        ready: true,
        content_type: th.headers.get('content-type'),
        size: thumbBytes.length,
      },
    ]);
    t.equal(after.body.width, 600);
  });

  t.test('media info: not an image, no dimensions', async (t) => {
    const { status, body } = await getJson(r, `${INFO}/${SERVER_NAME}/${text.id}`, ALICE);
    t.equal(status, 200);
    t.same(body, {
      content_uri: `mxc://${SERVER_NAME}/${text.id}`,
      content_type: 'text/plain',
      size: 5,
      hashes: { sha256: sha(text.body) },
    });
  });

  t.test('media info: remote media as stored here; never fetched; quarantine hides', async (t) => {
    const db = svc.db;
    // A stored remote row over Bob's blob (as a fetched copy would be).
    await db.query(
      `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes, datastore_id, location, creation_ts)
       SELECT 'remote.example', 'remoteid', upload_name, content_type, '', sha256_hash, size_bytes, datastore_id, location, creation_ts
       FROM media WHERE media_id = $1`,
      [bobImage.id],
    );
    const remote = await getJson(r, `${INFO}/remote.example/remoteid`, ALICE);
    t.equal(remote.status, 200);
    t.equal(remote.body.content_uri, 'mxc://remote.example/remoteid');
    t.same([remote.body.width, remote.body.height], [300, 200]);
    await expectError(t, r, `${INFO}/remote.example/remoteid?allow_remote=false`, ALICE, 404, 'M_NOT_FOUND');
    // Not stored: 404 at once (a fetch from this unresolvable server would answer 502).
    await expectError(t, r, `${INFO}/remote.invalid/nothere`, ALICE, 404, 'M_NOT_FOUND');
    await expectError(t, r, `${INFO}/${SERVER_NAME}/nosuchmedia`, ALICE, 404, 'M_NOT_FOUND');
    await expectError(t, r, `${INFO}/${SERVER_NAME}/${text.id}?allow_remote=maybe`, ALICE, 400, 'M_INVALID_PARAM');

    const q = await upload(r, ALICE, randomBytes(64), 'application/octet-stream', 'q.bin');
    await db.query('UPDATE media SET quarantined = TRUE WHERE media_id = $1', [q]);
    // As a quarantine does: every HTTP thread's caches forget the row.
    svc.invalidator.announce({ media: [`${SERVER_NAME}/${q}`], hashes: [] });
    await expectError(t, r, `${INFO}/${SERVER_NAME}/${q}`, ALICE, 404, 'M_NOT_FOUND');
    // Leave the local numbers below as the seed made them (plus this one quarantined row).
    uploads.push({ id: q, body: Buffer.alloc(64), user: '@alice:media.test', contentType: '', name: 'q.bin' });
  });

  t.test('admin routes: no token 401, plain user 403, repo admin 200', async (t) => {
    const paths = [
      `${ADMIN}/usage/${SERVER_NAME}`,
      `${ADMIN}/usage/${SERVER_NAME}/users`,
      `${ADMIN}/usage/${SERVER_NAME}/uploads`,
    ];
    for (const p of paths) {
      await expectError(t, r, p, null, 401, 'M_MISSING_TOKEN');
      await expectError(t, r, p, ALICE, 403, 'M_FORBIDDEN');
      t.equal((await getJson(r, p, SECRET)).status, 200, p);
    }
    await expectError(t, r, `${ADMIN}/federation/test/example.org`, BOB, 403, 'M_FORBIDDEN');
    await expectError(t, r, `${ADMIN}/usage/a..b`, SECRET, 400, 'M_INVALID_PARAM');
  });

  t.test('usage: exact bytes and counts, media and thumbnails of that origin only', async (t) => {
    const local = uploads.filter((u) => u.user !== '');
    const mediaBytes = local.reduce((n, u) => n + u.body.length, 0);
    const thumbs = (
      await svc.db.query<{ n: string; b: string }>('SELECT COUNT(*) AS n, SUM(size_bytes) AS b FROM thumbnails')
    ).rows[0]!;
    t.equal(Number(thumbs.n), 1, 'one thumbnail stored above');
    const { status, body } = await getJson(r, `${ADMIN}/usage/${SERVER_NAME}`, SECRET);
    t.equal(status, 200);
    t.same(body, {
      raw_bytes: { total: mediaBytes + Number(thumbs.b), media: mediaBytes, thumbnails: Number(thumbs.b) },
      raw_counts: { total: local.length + 1, media: local.length, thumbnails: 1 },
    });
    const remote = await getJson(r, `${ADMIN_T2BOT}/usage/remote.example`, SECRET);
    t.same(remote.body, {
      raw_bytes: { total: bobImage.body.length, media: bobImage.body.length, thumbnails: 0 },
      raw_counts: { total: 1, media: 1, thumbnails: 0 },
    });
  });

  t.test('usage/users: per user totals and uploaded MXCs, user_id may repeat', async (t) => {
    const q = `user_id=${encodeURIComponent('@alice:media.test')}&user_id=${encodeURIComponent('@bob:media.test')}`;
    const { status, body } = await getJson(r, `${ADMIN}/usage/${SERVER_NAME}/users?${q}`, SECRET);
    t.equal(status, 200);
    // Oldest first; uploads within one millisecond may come in either order, so compare sorted.
    body['@alice:media.test'].uploaded.sort();
    const alice = uploads.filter((u) => u.user === '@alice:media.test');
    const aliceBytes = alice.reduce((n, u) => n + u.body.length, 0);
    t.same(body, {
      '@alice:media.test': {
        raw_bytes: { total: aliceBytes, media: aliceBytes },
        raw_counts: { total: alice.length, media: alice.length },
        uploaded: alice.map((u) => `mxc://${SERVER_NAME}/${u.id}`).sort(),
      },
      '@bob:media.test': {
        raw_bytes: { total: sizes.bob, media: sizes.bob },
        raw_counts: { total: 1, media: 1 },
        uploaded: [`mxc://${SERVER_NAME}/${bobImage.id}`],
      },
    });
    const all = await getJson(r, `${ADMIN}/usage/${SERVER_NAME}/users`, SECRET);
    t.same(Object.keys(all.body).sort(), [
      '@a%b:media.test',
      '@a_b:media.test',
      '@alice:media.test',
      '@axb:media.test',
      '@bob:media.test',
    ]);
    t.equal(all.body['@axb:media.test'].uploaded.length, 3);
  });

  t.test('usage/uploads: per MXC records, mxc may repeat, must name the server', async (t) => {
    const q = `mxc=mxc://${SERVER_NAME}/${image.id}&mxc=mxc://${SERVER_NAME}/${text.id}`;
    const { status, body } = await getJson(r, `${ADMIN}/usage/${SERVER_NAME}/uploads?${q}`, SECRET);
    t.equal(status, 200);
    const row = (
      await svc.db.query<Record<string, unknown>>('SELECT location, creation_ts FROM media WHERE media_id = $1', [
        image.id,
      ])
    ).rows[0]!;
    t.same(Object.keys(body).sort(), [`mxc://${SERVER_NAME}/${image.id}`, `mxc://${SERVER_NAME}/${text.id}`].sort());
    t.same(body[`mxc://${SERVER_NAME}/${image.id}`], {
      size_bytes: image.body.length,
      uploaded_by: '@alice:media.test',
      datastore_id: 'files',
      datastore_location: row.location,
      sha256_hash: sha(image.body),
      quarantined: false,
      upload_name: 'a.png',
      content_type: 'image/png',
      created_ts: Number(row.creation_ts),
    });
    const all = await getJson(r, `${ADMIN}/usage/${SERVER_NAME}/uploads`, SECRET);
    t.equal(Object.keys(all.body).length, uploads.length, 'every media row of the server');
    const quarantined = uploads[uploads.length - 1]!;
    t.equal(all.body[`mxc://${SERVER_NAME}/${quarantined.id}`].quarantined, true);
    const wrong = await expectError(
      t,
      r,
      `${ADMIN}/usage/${SERVER_NAME}/uploads?mxc=mxc://other.example/abc`,
      SECRET,
      400,
      'M_INVALID_PARAM',
    );
    t.match(wrong.error, /must match the requested server/);
    await expectError(t, r, `${ADMIN}/usage/${SERVER_NAME}/uploads?mxc=nonsense`, SECRET, 400, 'M_INVALID_PARAM');
  });

  t.test('federation test: discovery and /version of a fixture server', async (t) => {
    const fixture = createServer((req, res) => {
      if (req.url === '/_matrix/federation/v1/version') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ server: { name: 'fixture', version: '1.2.3' } }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((ok) => fixture.listen(0, '127.0.0.1', ok));
    t.teardown(() => new Promise<void>((ok) => fixture.close(() => ok())));
    const name = `127.0.0.1:${(fixture.address() as AddressInfo).port}`;
    const { status, body } = await getJson(r, `${ADMIN}/federation/test/${name}`, SECRET);
    t.equal(status, 200);
    t.same(body, {
      base_url: `http://${name}`,
      hostname: name,
      versions_response: { server: { name: 'fixture', version: '1.2.3' } },
    });
    // Nobody listens there: MMR's 500 with the reason.
    const closed = `127.0.0.1:${await freePort()}`;
    const failed = await expectError(t, r, `${ADMIN}/federation/test/${closed}`, SECRET, 500, 'M_UNKNOWN');
    t.match(failed.error, `Federation test of ${closed} failed`);
  });
});
