import t from 'tap';
import { randomBytes } from 'node:crypto';
import { drivers } from './helpers/databases.js';
import { ALICE, BOB, GUEST, ONE_THREAD, SECRET, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';

// Authentication: token transport, the whoami cache, appservices (via the homeserver and
// the local shortcut), the shared secret, homeserver outages, logout and guests.

type Err = { errcode: string; error: string };
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
const CONFIG = '/_matrix/client/v1/media/config';

async function expectError(t: Tap, res: Response, status: number, errcode: string, msg: string): Promise<void> {
  t.equal(res.status, status, `${msg}: status ${status}`);
  t.equal(((await res.json()) as Err).errcode, errcode, `${msg}: ${errcode}`);
}

async function uploadAs(r: TestRepo, token: string, query = ''): Promise<Response> {
  return r.fetch(`/_matrix/media/v3/upload${query}`, { method: 'POST', token, body: new Uint8Array(randomBytes(64)) });
}

async function ownerOf(t: Tap, r: TestRepo, res: Response): Promise<string> {
  t.equal(res.status, 200, 'upload succeeds');
  const id = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const row = await r.repo.services.db.query<{ user_id: string }>(
    'SELECT user_id FROM media WHERE origin = $1 AND media_id = $2',
    [SERVER_NAME, id],
  );
  return row.rows[0]!.user_id;
}

/** Counts whoami calls the fixture saw while fn ran. */
async function whoamis(r: TestRepo, fn: () => Promise<unknown>): Promise<number> {
  const before = r.hs.whoamiCalls;
  await fn();
  return r.hs.whoamiCalls - before;
}

const APPSERVICE = {
  id: 'br',
  asToken: 'as-token',
  senderUserId: '@bot:media.test',
  userNamespaces: [{ regex: '@br_.*' }],
};

for (const d of drivers()) {
  // No token cache; the client's X-Forwarded-For is not trusted.
  t.test(`auth without a token cache (${d.name})`, { skip: d.skip }, async (t) => {
    const r = await startTestRepo(d.name, { timeouts: { clientServerTimeoutSeconds: 1 } });
    t.teardown(() => r.close());

    t.test('Bearer header and ?access_token= both work; bad or missing tokens are 401', async (t) => {
      t.equal((await r.fetch(CONFIG, { token: ALICE })).status, 200, 'Bearer header');
      t.equal((await r.fetch(`${CONFIG}?access_token=${ALICE}`)).status, 200, 'access_token query parameter');
      await expectError(t, await r.fetch(CONFIG, { token: 'nope' }), 401, 'M_UNKNOWN_TOKEN', 'invalid token');
      await expectError(t, await r.fetch(`${CONFIG}?access_token=nope`), 401, 'M_UNKNOWN_TOKEN', 'invalid query token');
      await expectError(t, await r.fetch(CONFIG), 401, 'M_MISSING_TOKEN', 'no token');
      await expectError(
        t,
        await r.fetch(CONFIG, { headers: { Authorization: 'Basic abc' } }),
        401,
        'M_MISSING_TOKEN',
        'non-Bearer scheme',
      );
    });

    t.test('maxCacheTimeSeconds 0: every request asks the homeserver', async (t) => {
      const n = await whoamis(r, async () => {
        for (let i = 0; i < 5; i++) t.equal((await r.fetch(CONFIG, { token: ALICE })).status, 200);
      });
      t.equal(n, 5, '5 requests, 5 whoami calls');
      const bad = await whoamis(r, async () => {
        for (let i = 0; i < 2; i++) await (await r.fetch(CONFIG, { token: 'nope' })).arrayBuffer();
      });
      t.equal(bad, 2, 'invalid tokens are asked each time too');
    });

    t.test("the client's X-Forwarded-For is not trusted by default", async (t) => {
      await (await r.fetch(CONFIG, { token: ALICE, headers: { 'X-Forwarded-For': '203.0.113.7' } })).arrayBuffer();
      t.equal(r.hs.lastHeaders['x-forwarded-for'], '127.0.0.1', 'whoami gets the socket address');
      t.equal(r.hs.lastHeaders['x-real-ip'], '127.0.0.1');
    });

    t.test('appservice via the homeserver: ?user_id= in the namespace', async (t) => {
      r.hs.tokens.set('hs-as-token', { userId: '@bridgebot:media.test', appserviceNamespace: '@bridge_' });
      t.equal(
        await ownerOf(t, r, await uploadAs(r, 'hs-as-token', '?user_id=%40bridge_x%3Amedia.test')),
        '@bridge_x:media.test',
      );
      t.equal(
        await ownerOf(t, r, await uploadAs(r, 'hs-as-token')),
        '@bridgebot:media.test',
        'without user_id: the sender',
      );
      await expectError(
        t,
        await uploadAs(r, 'hs-as-token', '?user_id=%40other%3Amedia.test'),
        403,
        'M_EXCLUSIVE',
        'outside the namespace',
      );
    });

    t.test('shared secret token acts as a user without whoami', async (t) => {
      const n = await whoamis(r, async () => {
        t.equal((await r.fetch(CONFIG, { token: SECRET })).status, 200);
        t.equal(await ownerOf(t, r, await uploadAs(r, SECRET)), '@sharedsecret');
      });
      t.equal(n, 0);
    });

    t.test('guests: no upload, create or config; authenticated download is fine', async (t) => {
      const owner = await uploadAs(r, ALICE);
      const id = ((await owner.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      await expectError(t, await uploadAs(r, GUEST), 403, 'M_GUEST_ACCESS_FORBIDDEN', 'guest upload');
      await expectError(
        t,
        await r.fetch('/_matrix/media/v1/create', { method: 'POST', token: GUEST }),
        403,
        'M_GUEST_ACCESS_FORBIDDEN',
        'guest create',
      );
      await expectError(t, await r.fetch(CONFIG, { token: GUEST }), 403, 'M_GUEST_ACCESS_FORBIDDEN', 'guest config');
      const dl = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: GUEST });
      t.equal(dl.status, 200, 'guest download');
      t.equal((await dl.arrayBuffer()).byteLength, 64);
    });

    t.test('homeserver errors: 500 → 502, slow → 504 quickly, down → 502', async (t) => {
      r.hs.failWith = 500;
      await expectError(t, await r.fetch(CONFIG, { token: ALICE }), 502, 'M_UNKNOWN', 'homeserver answers 500');
      r.hs.failWith = null;
      t.equal((await r.fetch(CONFIG, { token: ALICE })).status, 200, 'recovers once the homeserver does');

      r.hs.delayMs = 3000;
      const started = Date.now();
      await expectError(t, await r.fetch(CONFIG, { token: ALICE }), 504, 'M_UNKNOWN', 'homeserver slower than 1 s');
      const elapsed = Date.now() - started;
      t.ok(elapsed < 4000, `504 after ${elapsed} ms with a 1 s timeout: no hang`);
      r.hs.delayMs = 0;

      await r.hs.close();
      await expectError(t, await r.fetch(CONFIG, { token: ALICE }), 502, 'M_UNKNOWN', 'homeserver unreachable');
    });
  });

  // Token cache on, forwarded addresses trusted, the local appservice shortcut on.
  t.test(`auth with a token cache (${d.name})`, { skip: d.skip }, async (t) => {
    const r = await startTestRepo(d.name, {
      // One thread: whoami calls per token are counted (each HTTP thread has its token cache).
      repo: { trustAnyForwardedAddress: true, ...ONE_THREAD },
      accessTokens: { maxCacheTimeSeconds: 60, useLocalAppserviceConfig: true, appservices: [APPSERVICE] },
    });
    t.teardown(() => r.close());

    t.test('N requests with one token cost one whoami call; invalid answers are cached too', async (t) => {
      const n = await whoamis(r, async () => {
        for (let i = 0; i < 5; i++) t.equal((await r.fetch(CONFIG, { token: ALICE })).status, 200);
        t.equal((await r.fetch(`${CONFIG}?access_token=${ALICE}`)).status, 200, 'query token shares the cache');
      });
      t.equal(n, 1, 'one whoami call for 6 requests');
      const bad = await whoamis(r, async () => {
        await expectError(t, await r.fetch(CONFIG, { token: 'nope' }), 401, 'M_UNKNOWN_TOKEN', 'first');
        await expectError(t, await r.fetch(CONFIG, { token: 'nope' }), 401, 'M_UNKNOWN_TOKEN', 'second');
      });
      t.equal(bad, 1, 'a rejected token is asked once');
    });

    t.test('outages are not cached', async (t) => {
      r.hs.tokens.set('carol-token', { userId: '@carol:media.test' });
      r.hs.failWith = 500;
      t.equal((await r.fetch(CONFIG, { token: 'carol-token' })).status, 502);
      r.hs.failWith = null;
      t.equal(
        (await r.fetch(CONFIG, { token: 'carol-token' })).status,
        200,
        'the token works once the homeserver is back',
      );
    });

    t.test("with trustAnyForwardedAddress the client's first X-Forwarded-For hop is passed on", async (t) => {
      r.hs.tokens.set('xff-token', { userId: '@xff:media.test' });
      await (
        await r.fetch(CONFIG, { token: 'xff-token', headers: { 'X-Forwarded-For': '203.0.113.7, 10.0.0.1' } })
      ).arrayBuffer();
      t.equal(r.hs.lastHeaders['x-forwarded-for'], '203.0.113.7');
      r.hs.tokens.set('xff-token2', { userId: '@xff:media.test' });
      await (
        await r.fetch(CONFIG, { token: 'xff-token2', headers: { 'X-Forwarded-For': 'not an address' } })
      ).arrayBuffer();
      t.equal(r.hs.lastHeaders['x-forwarded-for'], '127.0.0.1', 'a malformed header falls back to the socket address');
      r.hs.tokens.set('xff-token3', { userId: '@xff:media.test' });
      await (await r.fetch(CONFIG, { token: 'xff-token3' })).arrayBuffer();
      t.equal(r.hs.lastHeaders['x-forwarded-for'], '127.0.0.1', 'no header: the socket address');
    });

    t.test('local appservice config: no whoami, namespace enforced', async (t) => {
      const n = await whoamis(r, async () => {
        t.equal(await ownerOf(t, r, await uploadAs(r, 'as-token')), '@bot:media.test', 'the sender by default');
        t.equal(
          await ownerOf(t, r, await uploadAs(r, 'as-token', '?user_id=%40br_1%3Amedia.test')),
          '@br_1:media.test',
        );
        await expectError(
          t,
          await uploadAs(r, 'as-token', '?user_id=%40other%3Amedia.test'),
          403,
          'M_FORBIDDEN',
          'outside the namespace',
        );
      });
      t.equal(n, 0, 'the appservice token never reaches whoami');
    });

    t.test('logout drops the cached token at once', async (t) => {
      r.hs.tokens.set('erin-token', { userId: '@erin:media.test' });
      t.equal((await r.fetch(CONFIG, { token: 'erin-token' })).status, 200, 'cached');
      const out = await r.fetch('/_matrix/client/v3/logout', { method: 'POST', token: 'erin-token', body: '{}' });
      t.equal(out.status, 200);
      t.same(await out.json(), {});
      t.notOk(r.hs.tokens.has('erin-token'), 'proxied: the homeserver dropped the token');
      await expectError(t, await r.fetch(CONFIG, { token: 'erin-token' }), 401, 'M_UNKNOWN_TOKEN', 'after logout');
    });

    t.test('logout/all drops every token of the user', async (t) => {
      r.hs.tokens.set('frank-1', { userId: '@frank:media.test' });
      r.hs.tokens.set('frank-2', { userId: '@frank:media.test' });
      r.hs.tokens.set('grace-1', { userId: '@grace:media.test' });
      for (const tok of ['frank-1', 'frank-2', 'grace-1'])
        t.equal((await r.fetch(CONFIG, { token: tok })).status, 200, `${tok} cached`);
      const out = await r.fetch('/_matrix/client/r0/logout/all', { method: 'POST', token: 'frank-1' });
      t.equal(out.status, 200);
      await out.arrayBuffer();
      await expectError(
        t,
        await r.fetch(CONFIG, { token: 'frank-1' }),
        401,
        'M_UNKNOWN_TOKEN',
        'frank-1 after logout/all',
      );
      await expectError(
        t,
        await r.fetch(CONFIG, { token: 'frank-2' }),
        401,
        'M_UNKNOWN_TOKEN',
        'frank-2 after logout/all',
      );
      t.equal((await r.fetch(CONFIG, { token: 'grace-1' })).status, 200, 'other users keep their tokens');
      t.equal((await r.fetch(CONFIG, { token: BOB })).status, 200);
    });

    t.test('logout with a token the homeserver rejects is 401', async (t) => {
      await expectError(
        t,
        await r.fetch('/_matrix/client/v3/logout', { method: 'POST', token: 'nope' }),
        401,
        'M_UNKNOWN_TOKEN',
        'bad token',
      );
      await expectError(
        t,
        await r.fetch('/_matrix/client/v3/logout', { method: 'POST' }),
        401,
        'M_MISSING_TOKEN',
        'no token',
      );
    });
  });
}
