// Quarantine, purge, attributes and the audit trail over real HTTP (MMR's admin API paths), on
// one media-repo serving two homeservers (media.test and other.test) whose admins are known to
// a fixture homeserver speaking Synapse's admin API. Roles: a repo admin (the shared secret),
// a local admin of media.test, a local admin of other.test, the uploader, another user, a guest
// and no token.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ALICE, BOB, GUEST, SECRET, startTestRepo, type TestRepo } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { blobFiles, mediaRowCount, waitFor } from './helpers/hostile-store.js';
import { png } from './helpers/images.js';
import { insertMedia } from '../src/db/media.js';
import { insertReservation } from '../src/db/reservations.js';

const HS = 'media.test';
const OTHER = 'other.test';
const MOD = 'mod-token'; // local admin of media.test
const OTHER_MOD = 'other-mod-token'; // local admin of other.test
const ADMIN = '/_matrix/media/unstable/admin';

const hs = await startFixtureHomeserver();
hs.tokens.set(ALICE, { userId: '@alice:media.test' });
hs.tokens.set(BOB, { userId: '@bob:media.test' });
hs.tokens.set(GUEST, { userId: '@guest:media.test', isGuest: true });
hs.tokens.set(MOD, { userId: '@mod:media.test' });
hs.tokens.set(OTHER_MOD, { userId: '@mod:other.test' });
hs.admins.add('@mod:media.test');
hs.admins.add('@mod:other.test');
const homeservers = [HS, OTHER].map((name) => ({ name, csApi: hs.url, adminApiKind: 'synapse' }));
const r: TestRepo = await startTestRepo('pglite', { homeservers, thumbnails: { pregenerate: false } });
t.teardown(async () => {
  await r.close();
  await hs.close();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function upload(bytes: Buffer, opts: { token?: string; host?: string; name?: string } = {}): Promise<string> {
  const res = await r.fetch(`/_matrix/media/v3/upload${opts.name ? `?filename=${opts.name}` : ''}`, {
    method: 'POST',
    token: opts.token ?? ALICE,
    host: opts.host ?? HS,
    headers: { 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

function download(origin: string, id: string, host = HS) {
  return r.fetch(`/_matrix/client/v1/media/download/${origin}/${id}`, { token: ALICE, host });
}

async function status(origin: string, id: string, host = HS): Promise<number> {
  const res = await download(origin, id, host);
  await res.arrayBuffer();
  return res.status;
}

function post(path: string, token: string | null, host = HS, body = '{}') {
  return r.fetch(path, { method: 'POST', token, host, headers: { 'Content-Type': 'application/json' }, body });
}

async function jsonOf(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

t.test('role matrix: every moderation endpoint, every role', async (t) => {
  const roles: Record<string, string | null> = {
    repoAdmin: SECRET,
    localAdmin: MOD,
    otherLocalAdmin: OTHER_MOD,
    uploader: ALICE,
    otherUser: BOB,
    guest: GUEST,
    noToken: null,
  };
  const RA_ONLY = {
    repoAdmin: 200,
    localAdmin: 403,
    otherLocalAdmin: 403,
    uploader: 403,
    otherUser: 403,
    guest: 403,
    noToken: 401,
  };
  const ADMINS = { ...RA_ONLY, localAdmin: 200 };
  const OWNER = { ...ADMINS, uploader: 200 };
  type Call = (id: string) => Promise<Response>;
  const endpoints: [string, Record<string, number>, (token: string | null) => Call][] = [
    ['quarantine media', ADMINS, (tk) => (id) => post(`${ADMIN}/quarantine/${HS}/${id}`, tk)],
    ['unquarantine media', ADMINS, (tk) => (id) => post(`${ADMIN}/unquarantine/${HS}/${id}`, tk)],
    ['quarantine user', ADMINS, (tk) => () => post(`${ADMIN}/quarantine/user/@nobody:${HS}`, tk)],
    ['quarantine server', ADMINS, (tk) => () => post(`${ADMIN}/quarantine/server/${HS}?x=1`, tk)],
    ['purge remote', RA_ONLY, (tk) => () => post(`${ADMIN}/purge/remote?before_ts=1`, tk)],
    ['purge old', RA_ONLY, (tk) => () => post(`${ADMIN}/purge/old?before_ts=1`, tk)],
    ['purge quarantined', ADMINS, (tk) => () => post(`${ADMIN}/purge/quarantined`, tk)],
    ['purge user', ADMINS, (tk) => () => post(`${ADMIN}/purge/user/@nobody:${HS}`, tk)],
    ['purge server', ADMINS, (tk) => () => post(`${ADMIN}/purge/server/${HS}?before_ts=1`, tk)],
    ['purge one', OWNER, (tk) => (id) => post(`${ADMIN}/purge/${HS}/${id}`, tk)],
    [
      'DELETE download',
      OWNER,
      (tk) => (id) => r.fetch(`/_matrix/media/v3/download/${HS}/${id}`, { method: 'DELETE', token: tk, host: HS }),
    ],
    [
      'get attributes',
      ADMINS,
      (tk) => (id) => r.fetch(`${ADMIN}/media/${HS}/${id}/attributes`, { token: tk, host: HS }),
    ],
    [
      'set attributes',
      ADMINS,
      (tk) => (id) => post(`${ADMIN}/media/${HS}/${id}/attributes`, tk, HS, '{"purpose":"none"}'),
    ],
    ['audit', ADMINS, (tk) => () => r.fetch(`${ADMIN}/audit`, { token: tk, host: HS })],
    ['usage', RA_ONLY, (tk) => () => r.fetch(`${ADMIN}/usage/${HS}`, { token: tk, host: HS })],
    ['users-stats', ADMINS, (tk) => () => r.fetch(`${ADMIN}/usage/${HS}/users-stats`, { token: tk, host: HS })],
  ];
  for (const [name, expected, make] of endpoints) {
    for (const [role, token] of Object.entries(roles)) {
      const id = await upload(randomBytes(64));
      const res = await make(token)(id);
      const body: Record<string, unknown> = await jsonOf(res).catch(() => ({}));
      t.equal(res.status, expected[role], `${name} as ${role}: ${res.status} ${JSON.stringify(body).slice(0, 120)}`);
      if (res.status >= 400) t.type(body.errcode, 'string', `${name} as ${role}: a Matrix error`);
    }
  }
});

t.test('unknown targets answer 404, bad ones 400, never 500', async (t) => {
  const cases: [Promise<Response>, number, string][] = [
    [post(`${ADMIN}/quarantine/${HS}/nosuchmedia`, SECRET), 404, 'M_NOT_FOUND'],
    [post(`${ADMIN}/purge/${HS}/nosuchmedia`, SECRET), 404, 'M_NOT_FOUND'],
    [r.fetch(`${ADMIN}/media/${HS}/nosuchmedia/attributes`, { token: SECRET, host: HS }), 404, 'M_NOT_FOUND'],
    [post(`${ADMIN}/quarantine/user/notauser`, SECRET), 400, 'M_INVALID_PARAM'],
    [post(`${ADMIN}/purge/remote`, SECRET), 400, 'M_MISSING_PARAM'],
    [post(`${ADMIN}/purge/remote?before_ts=yesterday`, SECRET), 400, 'M_INVALID_PARAM'],
    [post(`${ADMIN}/media/${HS}/x/attributes`, SECRET, HS, '{"purpose":"sticky"}'), 400, 'M_INVALID_PARAM'],
  ];
  for (const [p, st, code] of cases) {
    const res = await p;
    const body = await jsonOf(res);
    t.equal(res.status, st, `${res.url}: ${JSON.stringify(body)}`);
    t.equal(body.errcode, code);
  }
});

t.test('quarantine by hash: every row with the bytes, on both homeservers; re-uploads refused', async (t) => {
  const bytes = randomBytes(3000);
  const a = await upload(bytes, { name: 'a.bin' });
  const b = await upload(bytes, { token: BOB, host: OTHER, name: 'b.bin' });
  t.equal(await status(HS, a), 200);
  t.equal(await status(OTHER, b, OTHER), 200);
  const res = await post(`${ADMIN}/quarantine/${HS}/${a}`, SECRET);
  t.same(await jsonOf(res), { num_quarantined: 2 }, 'both rows flagged');
  t.equal(await status(HS, a), 404, 'the named mxc is gone');
  t.equal(await status(OTHER, b, OTHER), 404, 'and the other homeserver’s copy');
  const rows = await mediaRowCount(r.repo.services.db);
  const files = blobFiles(r.mediaDir).length;
  for (const host of [HS, OTHER]) {
    const again = await r.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      token: ALICE,
      host,
      body: new Uint8Array(bytes),
    });
    const body = await jsonOf(again);
    t.equal(again.status, 403, `re-upload on ${host} refused`);
    t.equal(body.errcode, 'M_FORBIDDEN');
  }
  t.equal(await mediaRowCount(r.repo.services.db), rows, 'no row was stored');
  t.equal(blobFiles(r.mediaDir).length, files, 'no blob was stored');
  // Unquarantine by a repo admin brings both back.
  t.same(await jsonOf(await post(`${ADMIN}/unquarantine/${HS}/${a}`, SECRET)), { num_unquarantined: 2 });
  t.equal(await status(HS, a), 200);
  t.equal(await status(OTHER, b, OTHER), 200);
  t.equal(await upload(bytes, { name: 'c.bin' }).then(() => 'ok'), 'ok', 'the bytes may be uploaded again');
});

t.test("a local admin's quarantine touches its own homeserver only", async (t) => {
  const bytes = randomBytes(2500);
  const a = await upload(bytes, { name: 'a.bin' });
  const b = await upload(bytes, { token: BOB, host: OTHER, name: 'b.bin' });
  t.same(await jsonOf(await post(`${ADMIN}/quarantine/${HS}/${a}`, MOD)), { num_quarantined: 1 });
  t.equal(await status(HS, a), 404, 'its own copy is gone');
  t.equal(await status(OTHER, b, OTHER), 200, 'the other homeserver still serves its copy');
  const onHs = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    host: HS,
    body: new Uint8Array(bytes),
  });
  t.equal(onHs.status, 403, 're-upload refused on its homeserver');
  await onHs.arrayBuffer();
  t.ok(await upload(bytes, { host: OTHER, name: 'again.bin' }), 'accepted on the other');
  const foreign = await post(`${ADMIN}/quarantine/${OTHER}/${b}`, MOD);
  t.equal(foreign.status, 403, "another homeserver's media is out of its reach");
  await foreign.arrayBuffer();
  // A repo admin's quarantine cannot be lifted by a local admin.
  const c = await upload(randomBytes(900));
  await (await post(`${ADMIN}/quarantine/${HS}/${c}`, SECRET)).arrayBuffer();
  const lift = await post(`${ADMIN}/unquarantine/${HS}/${c}`, MOD);
  t.equal(lift.status, 403, "a repo admin's quarantine stays");
  await lift.arrayBuffer();
});

t.test('quarantine.allowLocalAdmins: false keeps local admins out of quarantine', async (t) => {
  const hs2 = await startFixtureHomeserver();
  hs2.tokens.set(MOD, { userId: '@mod:media.test' });
  hs2.admins.add('@mod:media.test');
  const r2 = await startTestRepo('pglite', {
    homeservers: [{ name: HS, csApi: hs2.url, adminApiKind: 'synapse' }],
    quarantine: { allowLocalAdmins: false },
  });
  t.teardown(async () => {
    await r2.close();
    await hs2.close();
  });
  hs2.tokens.set(ALICE, { userId: '@alice:media.test' });
  const up = await r2.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    body: new Uint8Array(randomBytes(99)),
  });
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const res = await r2.fetch(`${ADMIN}/quarantine/${HS}/${id}`, { method: 'POST', token: MOD });
  t.equal(res.status, 403);
  t.match(await jsonOf(res), { errcode: 'M_FORBIDDEN', error: /Only repository admins may quarantine/ });
  const purge = await r2.fetch(`${ADMIN}/purge/${HS}/${id}`, { method: 'POST', token: MOD });
  t.equal(purge.status, 200, 'purging is still theirs');
  await purge.arrayBuffer();
});

t.test('pinned media survives quarantine and purge', async (t) => {
  const bytes = randomBytes(1800);
  const pinned = await upload(bytes, { name: 'pinned.bin' });
  const plain = await upload(bytes, { token: BOB, name: 'plain.bin' });
  const set = await post(`${ADMIN}/media/${HS}/${pinned}/attributes`, SECRET, HS, '{"purpose":"pinned"}');
  t.same(await jsonOf(set), { purpose: 'pinned' });
  const got = await r.fetch(`${ADMIN}/media/${HS}/${pinned}/attributes`, { token: MOD, host: HS });
  t.same(await jsonOf(got), { purpose: 'pinned' });
  t.same(
    await jsonOf(await post(`${ADMIN}/quarantine/${HS}/${pinned}`, SECRET)),
    { num_quarantined: 0 },
    'a pinned target blocks nothing',
  );
  t.equal(await status(HS, pinned), 200);
  t.equal(await status(HS, plain), 200, 'nor its twin');
  // Quarantining the twin flags the twin and leaves the pinned row served.
  t.same(await jsonOf(await post(`${ADMIN}/quarantine/${HS}/${plain}`, SECRET)), { num_quarantined: 1 });
  t.equal(await status(HS, pinned), 200, 'pinned row still served');
  t.equal(await status(HS, plain), 404);
  const one = await post(`${ADMIN}/purge/${HS}/${pinned}`, SECRET);
  t.equal(one.status, 403, 'purging one pinned media is refused');
  await one.arrayBuffer();
  const all = await jsonOf(await post(`${ADMIN}/purge/user/@alice:media.test`, SECRET));
  t.notOk((all.affected as string[]).includes(`mxc://${HS}/${pinned}`), 'a user purge skips it');
  t.equal(await status(HS, pinned), 200, 'and it is still served, its blob kept');
  await (await post(`${ADMIN}/media/${HS}/${pinned}/attributes`, SECRET, HS, '{"purpose":"none"}')).arrayBuffer();
});

t.test('shared blobs: purging one row keeps the blob, purging both deletes it', async (t) => {
  const bytes = randomBytes(4100);
  const path = join(r.mediaDir, sha(bytes).slice(0, 2), sha(bytes).slice(2, 4), sha(bytes));
  const a = await upload(bytes, { name: 'one.bin' });
  const b = await upload(bytes, { token: BOB, host: OTHER, name: 'two.bin' });
  t.ok(existsSync(path), 'one blob for both');
  t.same(await jsonOf(await post(`${ADMIN}/purge/${HS}/${a}`, SECRET)), { purged: true });
  t.equal(await status(HS, a), 404, 'the purged one is gone');
  t.ok(existsSync(path), 'the blob stays: another row uses it');
  const res = await download(OTHER, b, OTHER);
  t.equal(res.status, 200);
  t.equal(sha(Buffer.from(await res.arrayBuffer())), sha(bytes), 'the other row serves the same bytes');
  // The uploader purges their own (MMR's DELETE on the download path).
  const del = await r.fetch(`/_matrix/media/v3/download/${OTHER}/${b}`, { method: 'DELETE', token: BOB, host: OTHER });
  t.same(await jsonOf(del), { purged: true });
  t.notOk(existsSync(path), 'the last reference went: so did the blob');
  t.equal(await status(OTHER, b, OTHER), 404);
});

t.test('a purged ID is never handed out again', async (t) => {
  const id = await upload(randomBytes(700));
  await (await post(`${ADMIN}/purge/${HS}/${id}`, SECRET)).arrayBuffer();
  const db = r.repo.services.db;
  const row = {
    origin: HS,
    mediaId: id,
    uploadName: null,
    contentType: null,
    userId: '@alice:media.test',
    sha256: 'f'.repeat(64),
    sizeBytes: 1,
    datastoreId: 'files',
    location: 'x',
    creationTs: Date.now(),
    quarantined: false,
    requiresAuth: false,
  };
  t.equal(await insertMedia(db, row, { allowReserved: false }), false, 'an upload cannot take it');
  const reserved = await insertReservation(db, {
    origin: HS,
    mediaId: id,
    userId: '@alice:media.test',
    createdTs: Date.now(),
    expiresTs: Date.now() + 60_000,
  });
  t.equal(reserved, false, 'nor an async-upload reservation');
  const put = await r.fetch(`/_matrix/media/v3/upload/${HS}/${id}`, {
    method: 'PUT',
    token: ALICE,
    body: new Uint8Array(randomBytes(10)),
  });
  t.equal(put.status, 404, 'a PUT into it finds nothing to fill');
  await put.arrayBuffer();
});

t.test('quarantined then purged: the blob goes, the mxc stays blocked (tombstone)', async (t) => {
  const bytes = randomBytes(5200);
  const path = join(r.mediaDir, sha(bytes).slice(0, 2), sha(bytes).slice(2, 4), sha(bytes));
  const id = await upload(bytes);
  await (await post(`${ADMIN}/quarantine/${HS}/${id}`, MOD)).arrayBuffer();
  const purged = await jsonOf(await post(`${ADMIN}/purge/quarantined`, MOD));
  t.ok((purged.affected as string[]).includes(`mxc://${HS}/${id}`), 'listed as purged');
  t.notOk(existsSync(path), 'the blob is deleted');
  t.equal(await status(HS, id), 404, 'the mxc still answers 404');
  const again = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: BOB,
    host: HS,
    body: new Uint8Array(bytes),
  });
  t.equal(again.status, 403, 'the bytes stay refused');
  await again.arrayBuffer();
  t.notOk(existsSync(path), 'the refused upload left no blob at the address (its early link is removed)');
  const q = await r.repo.services.db.query<{ location: string; quarantined: boolean }>(
    'SELECT location, quarantined FROM media WHERE origin = $1 AND media_id = $2',
    [HS, id],
  );
  t.same(q.rows, [{ location: '', quarantined: true }], 'a tombstone row: quarantined, no blob');
});

t.test('quarantined thumbnails answer the placeholder image; downloads 404 (MMR defaults)', async (t) => {
  const id = await upload(await png(64, 48));
  const before = await r.fetch(`/_matrix/client/v1/media/thumbnail/${HS}/${id}?width=32&height=32`, {
    token: ALICE,
    host: HS,
  });
  t.equal(before.status, 200);
  const thumbBytes = Buffer.from(await before.arrayBuffer());
  await (await post(`${ADMIN}/quarantine/${HS}/${id}`, SECRET)).arrayBuffer();
  const after = await r.fetch(`/_matrix/client/v1/media/thumbnail/${HS}/${id}?width=32&height=32`, {
    token: ALICE,
    host: HS,
  });
  t.equal(after.status, 200, 'replaceThumbnails (default true)');
  t.equal(after.headers.get('content-type'), 'image/png');
  const placeholder = Buffer.from(await after.arrayBuffer());
  t.notOk(placeholder.equals(thumbBytes), 'not the thumbnail');
  t.ok(placeholder.subarray(1, 4).equals(Buffer.from('PNG')), 'a PNG');
  t.equal(await status(HS, id), 404, 'replaceDownloads (default false): 404');
});

t.test('quarantine.replaceDownloads and thumbnailPath', async (t) => {
  const custom = await png(20, 10);
  const file = join(r.dir, 'placeholder.png');
  (await import('node:fs')).writeFileSync(file, custom);
  const r2 = await startTestRepo('pglite', {
    quarantine: { replaceDownloads: true, replaceThumbnails: false, thumbnailPath: file },
  });
  t.teardown(() => r2.close());
  const up = await r2.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    body: new Uint8Array(await png(40, 40)),
  });
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  await (await r2.fetch(`${ADMIN}/quarantine/${HS}/${id}`, { method: 'POST', token: SECRET })).arrayBuffer();
  const dl = await r2.fetch(`/_matrix/client/v1/media/download/${HS}/${id}`, { token: ALICE });
  t.equal(dl.status, 200);
  t.ok(Buffer.from(await dl.arrayBuffer()).equals(custom), 'the operator’s image');
  const th = await r2.fetch(`/_matrix/client/v1/media/thumbnail/${HS}/${id}?width=32&height=32`, { token: ALICE });
  t.equal(th.status, 404, 'thumbnails not replaced');
  await th.arrayBuffer();
});

t.test('quarantine and purge of a user, a server, a room', async (t) => {
  const mine = [await upload(randomBytes(300)), await upload(randomBytes(301))];
  const bobs = await upload(randomBytes(302), { token: BOB });
  const first = await jsonOf(await post(`${ADMIN}/quarantine/user/@alice:media.test`, MOD));
  t.ok((first.num_quarantined as number) >= 2, `every upload of alice's flagged (${first.num_quarantined as number})`);
  const second = await jsonOf(await post(`${ADMIN}/quarantine/user/@alice:media.test`, MOD));
  t.same(second, { num_quarantined: 0 }, 'a second time flags nothing new');
  for (const id of mine) t.equal(await status(HS, id), 404, 'alice’s media quarantined');
  t.equal(await status(HS, bobs), 200, 'bob’s untouched');
  // Room media, as the homeserver lists it.
  const inRoom = await upload(randomBytes(303), { token: BOB });
  hs.roomMedia.set('!room:media.test', { local: [`mxc://${HS}/${inRoom}`], remote: [] });
  t.same(await jsonOf(await post(`${ADMIN}/quarantine/room/!room:media.test`, MOD)), { num_quarantined: 1 });
  t.equal(await status(HS, inRoom), 404);
  const roomPurge = await jsonOf(await post(`${ADMIN}/purge/room/!room:media.test`, MOD));
  t.same(roomPurge.affected, [`mxc://${HS}/${inRoom}`]);
  // A server purge by its local admin.
  const onOther = await upload(randomBytes(304), { host: OTHER });
  const p = await jsonOf(await post(`${ADMIN}/purge/server/${OTHER}`, OTHER_MOD, OTHER));
  t.ok((p.affected as string[]).includes(`mxc://${OTHER}/${onOther}`));
  t.equal(await status(OTHER, onOther, OTHER), 404);
  t.equal(await status(HS, bobs), 200, 'media.test untouched by other.test’s admin');
});

t.test('the audit trail records every action; a local admin sees its homeserver’s', async (t) => {
  const id = await upload(randomBytes(123));
  await (await post(`${ADMIN}/quarantine/${HS}/${id}`, MOD)).arrayBuffer();
  const all = await jsonOf(await r.fetch(`${ADMIN}/audit?limit=500`, { token: SECRET, host: HS }));
  const entries = all.entries as { actor: string; action: string; target: string; server_name: string; ts: number }[];
  const mine = entries.find((e) => e.target === `mxc://${HS}/${id}`);
  t.match(mine, { actor: '@mod:media.test', action: 'quarantine_media', server_name: HS });
  t.ok(mine!.ts > Date.now() - 60_000, 'with a time');
  t.ok(
    entries.some((e) => e.server_name === OTHER),
    'the repo admin sees other.test’s too',
  );
  const local = await jsonOf(await r.fetch(`${ADMIN}/audit?limit=500`, { token: MOD, host: HS }));
  t.ok(
    (local.entries as { server_name: string }[]).every((e) => e.server_name === HS),
    'a local admin sees its own',
  );
  // Waited for: another HTTP thread's lines reach the logger a moment after its answer.
  t.ok(await waitFor(() => r.logs.some((l) => l.includes('admin action') && l.includes(id))), 'and the log has it');
});

t.test('a download in flight when its media is purged completes or fails cleanly', async (t) => {
  const { request } = await import('node:http');
  const bytes = randomBytes(6 * 1024 * 1024);
  const id = await upload(bytes, { name: 'big.bin' });
  const outcome = await new Promise<{ ok: boolean; got: Buffer }>((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: r.port,
        path: `/_matrix/client/v1/media/download/${HS}/${id}`,
        headers: { Authorization: `Bearer ${ALICE}`, 'X-Forwarded-Host': HS },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let paused = false;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (paused) return;
          paused = true;
          res.pause(); // a slow reader: the rest waits while the media is purged
          void post(`${ADMIN}/purge/${HS}/${id}`, SECRET)
            .then((p) => p.arrayBuffer())
            .then(() => res.resume());
        });
        res.on('end', () => resolve({ ok: res.complete, got: Buffer.concat(chunks) }));
        res.on('error', () => resolve({ ok: false, got: Buffer.concat(chunks) }));
        res.on('aborted', () => resolve({ ok: false, got: Buffer.concat(chunks) }));
      },
    );
    req.on('error', () => resolve({ ok: false, got: Buffer.alloc(0) }));
    req.end();
  });
  if (outcome.ok) t.equal(sha(outcome.got), sha(bytes), 'it completed with the whole file');
  else t.ok(outcome.got.length < bytes.length, `it was cut off cleanly after ${outcome.got.length} bytes`);
  t.equal(await status(HS, id), 404, 'the media is gone afterwards');
  const other = await upload(randomBytes(100));
  t.equal(await status(HS, other), 200, 'and the server serves on');
});
