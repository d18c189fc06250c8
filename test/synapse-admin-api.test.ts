// Synapse's media admin API (/_synapse/admin/v1/...) over real HTTP, field by field against
// Synapse's documented answers, and its effects: quarantined media answers 404, protected media
// survives quarantine and delete, deleted media answers 404 and its ID is never handed out
// again, purge_media_cache touches remote rows only, keep_profiles keeps avatars, users' media
// pages with next_token. Roles: no token 401, plain user 403, repo admin and the Host's admin 200.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { ALICE, BOB, SECRET, startTestRepo, type TestRepo } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { drivers, type DriverName } from './helpers/databases.js';
import { getMedia, insertMedia } from '../src/db/media.js';
import { isReserved } from '../src/db/purge.js';

const V1 = '/_synapse/admin/v1';
const HS = 'media.test';
const CAROL = 'carol-token';
const DAVE = 'dave-token';
const ERIN = 'erin-token';

/** A JSON answer, read field by field below (the assertions are the type checks). */
type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A repo whose one homeserver is the fixture, asked through Synapse's admin API. */
async function startRepo(driver: DriverName, adminApiKind: 'synapse' | 'matrix'): Promise<TestRepo> {
  const hs = await startFixtureHomeserver();
  for (const [token, userId] of [
    [ALICE, '@alice:media.test'],
    [BOB, '@bob:media.test'],
    [CAROL, '@carol:media.test'],
    [DAVE, '@dave:media.test'],
    [ERIN, '@erin:media.test'],
  ] as const) {
    hs.tokens.set(token, { userId });
  }
  // Alice is an admin of the homeserver (a local admin here); Bob and the others are not.
  hs.admins.add('@alice:media.test');
  const r = await startTestRepo(driver, { homeservers: [{ name: HS, csApi: hs.url, adminApiKind }] });
  return {
    ...r,
    hs,
    async close() {
      await r.close();
      await hs.close();
    },
  };
}

async function upload(r: TestRepo, token: string, body: Buffer, name = 'file.bin', type = 'image/png') {
  const res = await r.fetch(`/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': type },
    token,
  });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function call(r: TestRepo, method: string, path: string, token: string | null) {
  const res = await r.fetch(path, {
    method,
    token,
    ...(method === 'POST' ? { body: '{}', headers: { 'Content-Type': 'application/json' } } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Body };
}

async function downloadStatus(r: TestRepo, id: string): Promise<number> {
  const res = await r.fetch(`/_matrix/client/v1/media/download/${HS}/${id}`, { token: BOB });
  await res.arrayBuffer();
  return res.status;
}

async function expectError(
  t: Test,
  r: TestRepo,
  method: string,
  path: string,
  token: string | null,
  status: number,
  errcode: string,
) {
  const got = await call(r, method, path, token);
  t.equal(got.status, status, `${method} ${path}: status`);
  t.equal(got.body.errcode, errcode, `${method} ${path}: errcode`);
  return got.body;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const keys = (o: object) => Object.keys(o).sort();

const MEDIA_INFO_FIELDS = [
  'authenticated',
  'created_ts',
  'filesystem_id',
  'last_access_ts',
  'media_id',
  'media_length',
  'media_origin',
  'media_type',
  'quarantined_by',
  'safe_from_quarantine',
  'sha256',
  'upload_name',
  'url_cache',
  'user_id',
];
const USER_MEDIA_FIELDS = [
  'created_ts',
  'last_access_ts',
  'media_id',
  'media_length',
  'media_type',
  'quarantined_by',
  'safe_from_quarantine',
  'upload_name',
];

async function synapseSuite(t: Test, driver: DriverName): Promise<void> {
  const r = await startRepo(driver, 'synapse');
  t.teardown(() => r.close());
  const db = r.repo.services.db;

  const catBytes = randomBytes(300);
  const cat = await upload(r, BOB, catBytes, 'cat.png');
  const info = (id: string, origin = HS) => call(r, 'GET', `${V1}/media/${origin}/${id}`, ALICE);

  t.test('roles: no token 401, plain user 403, repo admin and local admin 200', async (t) => {
    const reads = [`${V1}/media/${HS}/${cat}`, `${V1}/users/@bob:media.test/media`, `${V1}/statistics/users/media`];
    for (const path of reads) {
      await expectError(t, r, 'GET', path, null, 401, 'M_MISSING_TOKEN');
      await expectError(t, r, 'GET', path, BOB, 403, 'M_FORBIDDEN');
      t.equal((await call(r, 'GET', path, SECRET)).status, 200, `${path}: repo admin`);
      t.equal((await call(r, 'GET', path, ALICE)).status, 200, `${path}: local admin`);
    }
    const writes = [
      `${V1}/media/protect/${cat}`,
      `${V1}/media/unprotect/${cat}`,
      `${V1}/media/quarantine/${HS}/${cat}`,
      `${V1}/media/unquarantine/${HS}/${cat}`,
      `${V1}/user/@nobody:media.test/media/quarantine`,
      `${V1}/media/delete?before_ts=30000000000&keep_profiles=false`,
    ];
    for (const path of writes) {
      await expectError(t, r, 'POST', path, null, 401, 'M_MISSING_TOKEN');
      await expectError(t, r, 'POST', path, BOB, 403, 'M_FORBIDDEN');
      t.equal((await call(r, 'POST', path, SECRET)).status, 200, `${path}: repo admin`);
      t.equal((await call(r, 'POST', path, ALICE)).status, 200, `${path}: local admin`);
    }
    await expectError(t, r, 'DELETE', `${V1}/media/${HS}/nothere`, BOB, 403, 'M_FORBIDDEN');
    await expectError(t, r, 'DELETE', `${V1}/users/@bob:media.test/media`, null, 401, 'M_MISSING_TOKEN');
    // A local admin of media.test speaks for media.test only.
    await expectError(t, r, 'GET', `${V1}/users/@x:other.example/media`, ALICE, 403, 'M_FORBIDDEN');
    // The remote cache is every homeserver's: only a repo admin empties it.
    const purge = await expectError(
      t,
      r,
      'POST',
      `${V1}/purge_media_cache?before_ts=30000000000`,
      ALICE,
      403,
      'M_FORBIDDEN',
    );
    t.match(purge.error, /repository admins/);
    t.equal((await call(r, 'POST', `${V1}/purge_media_cache?before_ts=30000000000`, SECRET)).status, 200);
    t.equal(await downloadStatus(r, cat), 200, 'the role checks changed nothing');
  });

  t.test('GET media/{server}/{id}: media_info, field by field', async (t) => {
    const got = await info(cat);
    t.equal(got.status, 200);
    t.same(keys(got.body), ['media_info']);
    const m = got.body.media_info;
    t.same(keys(m), MEDIA_INFO_FIELDS);
    const row = (await getMedia(db, HS, cat))!;
    t.equal(m.media_origin, HS);
    t.equal(m.user_id, '@bob:media.test');
    t.equal(m.media_id, cat);
    t.equal(m.media_type, 'image/png');
    t.equal(m.media_length, 300);
    t.equal(m.upload_name, 'cat.png');
    t.equal(m.created_ts, row.creationTs);
    t.equal(m.filesystem_id, row.location);
    t.equal(m.url_cache, null);
    t.equal(m.last_access_ts, row.creationTs, 'no access times kept: the creation time');
    t.equal(m.quarantined_by, null);
    t.equal(m.authenticated, row.requiresAuth);
    t.equal(m.safe_from_quarantine, false);
    t.equal(m.sha256, sha(catBytes));
    await expectError(t, r, 'GET', `${V1}/media/${HS}/nosuchmedia`, ALICE, 404, 'M_NOT_FOUND');
    await expectError(t, r, 'GET', `${V1}/media/remote.example/nosuchmedia`, ALICE, 404, 'M_NOT_FOUND');
  });

  t.test('quarantine and unquarantine by ID: {}; every row of the hash; downloads 404', async (t) => {
    const twin = await upload(r, BOB, catBytes, 'twin.png');
    const q = await call(r, 'POST', `${V1}/media/quarantine/${HS}/${cat}`, ALICE);
    t.same(q, { status: 200, body: {} });
    t.equal(await downloadStatus(r, cat), 404);
    t.equal(await downloadStatus(r, twin), 404, 'the same bytes under another ID');
    t.equal((await info(cat)).body.media_info.quarantined_by, '@alice:media.test');
    t.equal((await info(twin)).body.media_info.quarantined_by, '@alice:media.test');
    const u = await call(r, 'POST', `${V1}/media/unquarantine/${HS}/${cat}`, ALICE);
    t.same(u, { status: 200, body: {} });
    t.equal(await downloadStatus(r, cat), 200);
    t.equal(await downloadStatus(r, twin), 200);
    t.equal((await info(cat)).body.media_info.quarantined_by, null);
    await expectError(t, r, 'POST', `${V1}/media/quarantine/${HS}/nosuchmedia`, ALICE, 404, 'M_NOT_FOUND');
  });

  t.test('protect: survives quarantine and delete; unprotect undoes it', async (t) => {
    const twin = (
      await call(r, 'GET', `${V1}/users/@bob:media.test/media?order_by=upload_name`, ALICE)
    ).body.media.find((m: Body) => m.upload_name === 'twin.png').media_id as string;
    t.same(await call(r, 'POST', `${V1}/media/protect/${cat}`, ALICE), { status: 200, body: {} });
    t.equal((await info(cat)).body.media_info.safe_from_quarantine, true);
    t.same(await call(r, 'POST', `${V1}/media/quarantine/${HS}/${cat}`, ALICE), { status: 200, body: {} });
    t.equal(await downloadStatus(r, cat), 200, 'protected: not quarantined');
    t.equal((await info(cat)).body.media_info.quarantined_by, null);
    const del = await expectError(t, r, 'DELETE', `${V1}/media/${HS}/${cat}`, ALICE, 403, 'M_FORBIDDEN');
    t.match(del.error, /protected/);
    const byDate = await call(
      r,
      'POST',
      `${V1}/media/delete?before_ts=${Date.now() + 1000}&size_gt=299&keep_profiles=false`,
      ALICE,
    );
    t.equal(byDate.status, 200);
    t.same(byDate.body, { deleted_media: [twin], total: 1 }, 'the unprotected twin goes, the protected one stays');
    t.equal(await downloadStatus(r, twin), 404);
    t.equal(await downloadStatus(r, cat), 200, 'its blob is still referenced: kept');
    t.same(await call(r, 'POST', `${V1}/media/unprotect/${cat}`, ALICE), { status: 200, body: {} });
    t.equal((await info(cat)).body.media_info.safe_from_quarantine, false);
    await expectError(t, r, 'POST', `${V1}/media/protect/nosuchmedia`, ALICE, 404, 'M_NOT_FOUND');
  });

  t.test('quarantine a room (both paths) and a user: {"num_quarantined": N}', async (t) => {
    const inRoom = await upload(r, BOB, randomBytes(40), 'room.png');
    const room = '!room:media.test';
    r.hs.roomMedia.set(room, { local: [`mxc://${HS}/${inRoom}`], remote: [] });
    const q = await call(r, 'POST', `${V1}/room/${encodeURIComponent(room)}/media/quarantine`, ALICE);
    t.same(q, { status: 200, body: { num_quarantined: 1 } });
    t.equal(await downloadStatus(r, inRoom), 404);
    const legacy = await call(r, 'POST', `${V1}/quarantine_media/${encodeURIComponent(room)}`, ALICE);
    t.same(legacy, { status: 200, body: { num_quarantined: 0 } }, 'already quarantined');

    const c1 = await upload(r, CAROL, randomBytes(50));
    const c2 = await upload(r, CAROL, randomBytes(51));
    const u = await call(r, 'POST', `${V1}/user/${encodeURIComponent('@carol:media.test')}/media/quarantine`, ALICE);
    t.same(u, { status: 200, body: { num_quarantined: 2 } });
    t.equal(await downloadStatus(r, c1), 404);
    t.equal(await downloadStatus(r, c2), 404);
    t.equal(await downloadStatus(r, cat), 200, "another user's media is untouched");
  });

  // Dave: five uploads of distinct sizes, made in the first test that uses them.
  const dave: { id: string; size: number }[] = [];
  const daveAll = 5;
  const userMedia = (q: string, token = ALICE) => call(r, 'GET', `${V1}/users/@dave:media.test/media${q}`, token);

  t.test('GET users/{id}/media: Synapse media objects, order_by, dir, paging with next_token', async (t) => {
    for (const size of [10, 20, 30, 40, 50]) {
      dave.push({ id: await upload(r, DAVE, randomBytes(size), `d${size}.png`), size });
    }
    const all = await userMedia('');
    t.equal(all.status, 200);
    t.same(keys(all.body), ['media', 'total'], 'one page: no next_token');
    t.equal(all.body.total, daveAll);
    for (const m of all.body.media) t.same(keys(m), USER_MEDIA_FIELDS);
    const created = all.body.media.map((m: Body) => m.created_ts as number);
    t.same(
      created,
      [...created].sort((a, b) => b - a),
      'default: newest first',
    );
    const d10 = all.body.media.find((m: Body) => m.media_id === dave[0]!.id);
    t.same(d10, {
      created_ts: d10.created_ts,
      last_access_ts: d10.created_ts,
      media_id: dave[0]!.id,
      media_length: 10,
      media_type: 'image/png',
      quarantined_by: null,
      safe_from_quarantine: false,
      upload_name: 'd10.png',
    });

    // Smallest first, two at a time.
    const seen: number[] = [];
    let from: number | undefined = 0;
    const tokens: number[] = [];
    while (from !== undefined) {
      const page = await userMedia(`?order_by=media_length&dir=f&limit=2&from=${from}`);
      t.equal(page.status, 200);
      t.equal(page.body.total, daveAll);
      seen.push(...page.body.media.map((m: Body) => m.media_length as number));
      from = page.body.next_token;
      if (from !== undefined) tokens.push(from);
    }
    t.same(seen, [10, 20, 30, 40, 50]);
    t.same(tokens, [2, 4], 'next_token is the next offset, absent on the last page');

    const byIdDesc = await userMedia('?order_by=media_id&dir=b');
    const ids = byIdDesc.body.media.map((m: Body) => m.media_id as string);
    t.same(ids, [...ids].sort().reverse());
    const largest = await userMedia('?order_by=media_length&dir=b&limit=1');
    t.equal(largest.body.media[0].media_length, 50);
    t.equal(largest.body.next_token, 1);

    await expectError(t, r, 'GET', `${V1}/users/@dave:media.test/media?order_by=size`, ALICE, 400, 'M_INVALID_PARAM');
    await expectError(t, r, 'GET', `${V1}/users/@dave:media.test/media?dir=x`, ALICE, 400, 'M_INVALID_PARAM');
    await expectError(t, r, 'GET', `${V1}/users/@dave:media.test/media?limit=-1`, ALICE, 400, 'M_INVALID_PARAM');
    const remote = await expectError(t, r, 'GET', `${V1}/users/@x:other.example/media`, SECRET, 400, 'M_INVALID_PARAM');
    t.match(remote.error, /local users/);
  });

  t.test('GET statistics/users/media: Synapse shape, paging', async (t) => {
    const got = await call(r, 'GET', `${V1}/statistics/users/media?search_term=dave`, ALICE);
    t.equal(got.status, 200);
    t.same(keys(got.body), ['total', 'users']);
    t.same(got.body.users, [
      { displayname: '@dave:media.test', media_count: daveAll, media_length: 150, user_id: '@dave:media.test' },
    ]);
    t.equal(got.body.total, 1);
    const page = await call(r, 'GET', `${V1}/statistics/users/media?limit=1&order_by=media_count&dir=b`, ALICE);
    t.equal(page.body.users.length, 1);
    t.equal(page.body.users[0].user_id, '@dave:media.test', 'the most uploads');
    t.equal(page.body.next_token, 1);
    t.ok(page.body.total >= 3);
    await expectError(t, r, 'GET', `${V1}/statistics/users/media?order_by=nope`, ALICE, 400, 'M_INVALID_PARAM');
  });

  t.test('DELETE users/{id}/media: the page the parameters name; {"deleted_media", "total"}', async (t) => {
    const got = await call(
      r,
      'DELETE',
      `${V1}/users/@dave:media.test/media?order_by=media_length&dir=b&limit=2`,
      ALICE,
    );
    t.equal(got.status, 200);
    t.same(keys(got.body), ['deleted_media', 'total'], 'no next_token');
    t.equal(got.body.total, 2);
    t.same([...got.body.deleted_media].sort(), [dave[3]!.id, dave[4]!.id].sort(), 'the two largest');
    t.equal(await downloadStatus(r, dave[4]!.id), 404);
    t.equal(await downloadStatus(r, dave[3]!.id), 404);
    t.equal(await downloadStatus(r, dave[0]!.id), 200, 'the rest stay');
    t.equal((await userMedia('')).body.total, daveAll - 2);
  });

  t.test('DELETE media/{server}/{id}: {"deleted_media": [id], "total": 1}; 404 after; ID reserved', async (t) => {
    const id = dave[0]!.id;
    const got = await call(r, 'DELETE', `${V1}/media/${HS}/${id}`, ALICE);
    t.same(got, { status: 200, body: { deleted_media: [id], total: 1 } });
    t.equal(await downloadStatus(r, id), 404);
    t.equal(await isReserved(db, HS, id), true);
    const row = { ...(await getMedia(db, HS, cat))!, mediaId: id };
    t.equal(await insertMedia(db, row, { allowReserved: false }), false, 'the ID cannot be used again');
    await expectError(t, r, 'DELETE', `${V1}/media/${HS}/${id}`, ALICE, 404, 'M_NOT_FOUND');
    const remote = await expectError(
      t,
      r,
      'DELETE',
      `${V1}/media/remote.example/${id}`,
      SECRET,
      400,
      'M_INVALID_PARAM',
    );
    t.match(remote.error, /local media/);
  });

  t.test('purge_media_cache: {"deleted": N}, remote rows only, quarantined ones kept', async (t) => {
    const local = (await getMedia(db, HS, cat))!;
    const remote = { ...local, origin: 'remote.example', userId: '', creationTs: Date.now() - 60_000 };
    t.ok(await insertMedia(db, { ...remote, mediaId: 'cached1' }, { allowReserved: true }));
    t.ok(await insertMedia(db, { ...remote, mediaId: 'blocked1', quarantined: true }, { allowReserved: true }));
    const remoteInfo = await info('cached1', 'remote.example');
    t.equal(remoteInfo.status, 200);
    t.equal(remoteInfo.body.media_info.user_id, null, 'remote media has no uploader here');
    t.equal(remoteInfo.body.media_info.media_origin, 'remote.example');

    const got = await call(r, 'POST', `${V1}/purge_media_cache?before_ts=${Date.now()}`, SECRET);
    t.same(got, { status: 200, body: { deleted: 1 } });
    t.equal((await info('cached1', 'remote.example')).status, 404, 'the cached copy is gone');
    t.equal((await info('blocked1', 'remote.example')).status, 200, 'a quarantined copy stays');
    t.equal(await downloadStatus(r, cat), 200, 'the local row of the same blob still serves');
    await expectError(t, r, 'POST', `${V1}/purge_media_cache`, SECRET, 400, 'M_MISSING_PARAM');
    await expectError(t, r, 'POST', `${V1}/purge_media_cache?before_ts=-5`, SECRET, 400, 'M_INVALID_PARAM');
  });

  t.test('POST media/delete: by date and size, avatars kept (keep_profiles), quarantined kept', async (t) => {
    const avatar = await upload(r, ERIN, randomBytes(60), 'me.png');
    const other = await upload(r, ERIN, randomBytes(61), 'other.png');
    r.hs.avatars.set('@erin:media.test', `mxc://${HS}/${avatar}`);
    const before = Date.now() + 1000;

    // Parameters, checked after the role (as Synapse).
    const bad = `${V1}/media/delete`;
    await expectError(t, r, 'POST', bad, ALICE, 400, 'M_MISSING_PARAM');
    const secs = await expectError(t, r, 'POST', `${bad}?before_ts=1893456000`, ALICE, 400, 'M_INVALID_PARAM');
    t.match(secs.error, /seconds/);
    await expectError(t, r, 'POST', `${bad}?before_ts=${before}&size_gt=-1`, ALICE, 400, 'M_INVALID_PARAM');
    await expectError(t, r, 'POST', `${bad}?before_ts=${before}&keep_profiles=maybe`, ALICE, 400, 'M_INVALID_PARAM');
    const secret = await expectError(t, r, 'POST', `${bad}?before_ts=${before}`, SECRET, 400, 'M_INVALID_PARAM');
    t.match(secret.error, /keep_profiles=false/);
    await expectError(
      t,
      r,
      'POST',
      `${V1}/media/other.example/delete?before_ts=${before}`,
      SECRET,
      400,
      'M_INVALID_PARAM',
    );

    // Only media larger than 60 bytes: the 60-byte avatar is out of reach either way.
    const got = await call(r, 'POST', `${V1}/media/delete?before_ts=${before}&size_gt=60`, ALICE);
    t.equal(got.status, 200);
    t.same(keys(got.body), ['deleted_media', 'total']);
    t.ok(got.body.deleted_media.includes(other), 'larger than size_gt: deleted');
    t.notOk(got.body.deleted_media.includes(avatar), 'not larger than size_gt: kept');
    t.equal(got.body.total, got.body.deleted_media.length);
    t.equal(await downloadStatus(r, other), 404);

    // Everything old: the avatar is kept while keep_profiles is true (the default)...
    const kept = await call(r, 'POST', `${V1}/media/delete?before_ts=${before}`, ALICE);
    t.equal(kept.status, 200);
    t.notOk(kept.body.deleted_media.includes(avatar), 'an avatar: kept');
    t.equal(await downloadStatus(r, avatar), 200);
    // ...and so is quarantined media (Carol's), whose blob stays for the record.
    const carolInfo = await call(r, 'GET', `${V1}/users/@carol:media.test/media`, ALICE);
    t.equal(carolInfo.body.total, 2);
    for (const m of carolInfo.body.media) {
      t.equal(m.quarantined_by, '@alice:media.test');
      t.not((await info(m.media_id)).body.media_info.filesystem_id, null, 'quarantined: blob kept');
    }

    // The legacy path, keep_profiles=false: the avatar goes too.
    const gone = await call(r, 'POST', `${V1}/media/${HS}/delete?before_ts=${before}&keep_profiles=false`, ALICE);
    t.same(gone, { status: 200, body: { deleted_media: [avatar], total: 1 } });
    t.equal(await downloadStatus(r, avatar), 404);
  });
}

for (const d of drivers()) {
  t.test(`Synapse media admin API, adminApiKind synapse (${d.name})`, { skip: d.skip }, (t) => synapseSuite(t, d.name));
}

t.test('keep_profiles without Synapse: 400 that names keep_profiles=false', async (t) => {
  const r = await startRepo('pglite', 'matrix');
  t.teardown(() => r.close());
  const id = await upload(r, BOB, randomBytes(20));
  const before = Date.now() + 1000;
  const refused = await expectError(
    t,
    r,
    'POST',
    `${V1}/media/delete?before_ts=${before}`,
    ALICE,
    400,
    'M_INVALID_PARAM',
  );
  t.match(refused.error, /adminApiKind/);
  t.match(refused.error, /keep_profiles=false/);
  t.equal(await downloadStatus(r, id), 200, 'nothing deleted');
  const got = await call(r, 'POST', `${V1}/media/delete?before_ts=${before}&keep_profiles=false`, ALICE);
  t.same(got, { status: 200, body: { deleted_media: [id], total: 1 } });
  t.equal(await downloadStatus(r, id), 404);
});
