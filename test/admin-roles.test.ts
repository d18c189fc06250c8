import t from 'tap';
import { ALICE, GUEST, SECRET, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { isLocalAdmin, type RoleDeps, type RoleRequest } from '../src/pipelines/roles.js';
import { AdminStatusCache } from '../src/cache/admin-status.js';
import { authenticate, callerIsLocalAdmin } from '../src/api/auth.js';
import { MatrixError } from '../src/errors.js';
import type { AuthUser, Ctx, Services } from '../src/api/services.js';
import type { DomainConfig, HomeserverConfig } from '../src/config/schema.js';

// Local admins: who counts as an admin of the Host's homeserver, asked of that homeserver (the
// fixture answers as Synapse does) by the real HomeserverClient over HTTP, per adminApiKind.
// No route uses 'localadmin' yet, so the role is checked through isLocalAdmin and authenticate.

const HS_ADMIN = 'hsadmin-token';
const CAROL = 'carol-token'; // a user of another server
const KINDS: HomeserverConfig['adminApiKind'][] = ['synapse', 'matrix'];

/** A call's outcome as [status, errcode] (200 when it succeeds). */
const status = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: MatrixError) => [e.status, e.errcode],
  );

t.test('local admins', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  r.hs.tokens.set(HS_ADMIN, { userId: '@hsadmin:media.test' });
  r.hs.tokens.set(CAROL, { userId: '@carol:other.test' });
  r.hs.admins.add('@hsadmin:media.test');
  r.hs.admins.add('@carol:other.test'); // an admin of her own server: not of ours

  const svc = r.repo.services;
  const base = svc.config().domains.get(SERVER_NAME)!;
  const domainOf = (kind: HomeserverConfig['adminApiKind']): DomainConfig => ({
    ...base,
    homeserver: { ...base.homeserver, adminApiKind: kind },
  });
  const depsWith = (cacheSeconds: number): RoleDeps => {
    const adminStatus = new AdminStatusCache();
    adminStatus.configure(cacheSeconds);
    return { config: svc.config, homeserver: svc.homeserver, adminStatus };
  };
  const user = (token: string, userId: string, isGuest = false): AuthUser => ({
    userId,
    isGuest,
    isRepoAdmin: false,
    token,
  });
  const request = (kind: HomeserverConfig['adminApiKind'], u: AuthUser): RoleRequest => ({
    user: u,
    serverName: SERVER_NAME,
    domain: domainOf(kind),
    remoteAddress: '127.0.0.1',
    log: svc.log,
  });
  /** The answer, and how many admin requests the fixture saw while it was found. */
  const ask = async (deps: RoleDeps, req: RoleRequest) => {
    const before = r.hs.adminCalls;
    const answer = await isLocalAdmin(deps, req);
    return { answer, calls: r.hs.adminCalls - before };
  };

  for (const kind of KINDS) {
    t.test(`adminApiKind ${kind}: the homeserver decides, for its own non-guest users only`, async (t) => {
      const deps = depsWith(0);
      const admin = user(HS_ADMIN, '@hsadmin:media.test');
      t.same(await ask(deps, request(kind, admin)), { answer: true, calls: 1 }, 'a server admin is a local admin');
      t.equal(admin.isLocalAdmin, true, 'the answer is remembered on the user');
      const alice = user(ALICE, '@alice:media.test');
      t.same(await ask(deps, request(kind, alice)), { answer: false, calls: 1 }, 'a plain user is not');
      t.equal(alice.isLocalAdmin, false);
      t.same(
        await ask(deps, request(kind, user(GUEST, '@guest:media.test', true))),
        { answer: false, calls: 0 },
        'a guest is not, and the homeserver is not asked',
      );
      t.same(
        await ask(deps, request(kind, user(CAROL, '@carol:other.test'))),
        { answer: false, calls: 0 },
        "another server's admin is not ours, and our homeserver is not asked",
      );
      t.same(
        await ask(deps, request(kind, { ...user(SECRET, '@sharedsecret'), isRepoAdmin: true })),
        { answer: false, calls: 0 },
        'a repo admin is not a local admin by that alone',
      );
    });

    t.test(`adminApiKind ${kind}: a failing homeserver is an error, not an answer`, async (t) => {
      const deps = depsWith(60);
      r.hs.failWith = 500;
      try {
        const e = await isLocalAdmin(deps, request(kind, user(HS_ADMIN, '@hsadmin:media.test'))).catch((x) => x);
        t.ok(e instanceof MatrixError, 'a Matrix error');
        t.equal((e as MatrixError).status, 502, 'a 500 from the homeserver is a 502');
      } finally {
        r.hs.failWith = null;
      }
      t.same(
        await ask(deps, request(kind, user(HS_ADMIN, '@hsadmin:media.test'))),
        { answer: true, calls: 1 },
        'the failure was not cached: the next request asks again',
      );
    });

    t.test(`adminApiKind ${kind}: answers are cached per token and user`, async (t) => {
      const deps = depsWith(60);
      const first = await ask(deps, request(kind, user(HS_ADMIN, '@hsadmin:media.test')));
      t.same(first, { answer: true, calls: 1 }, 'first call asks');
      const again = await ask(deps, request(kind, user(HS_ADMIN, '@hsadmin:media.test')));
      t.same(again, { answer: true, calls: 0 }, 'second call is answered from the cache');
      t.same(await ask(deps, request(kind, user(ALICE, '@alice:media.test'))), { answer: false, calls: 1 });
      t.same(await ask(deps, request(kind, user(ALICE, '@alice:media.test'))), { answer: false, calls: 0 }, 'no too');
      deps.adminStatus.dropToken(SERVER_NAME, HS_ADMIN);
      t.same(
        await ask(deps, request(kind, user(HS_ADMIN, '@hsadmin:media.test'))),
        { answer: true, calls: 1 },
        'dropToken forgets the answer',
      );
      deps.adminStatus.dropUser(SERVER_NAME, '@alice:media.test');
      t.same(await ask(deps, request(kind, user(ALICE, '@alice:media.test'))), { answer: false, calls: 1 }, 'dropUser');
      const off = depsWith(0);
      await ask(off, request(kind, user(HS_ADMIN, '@hsadmin:media.test')));
      t.same(
        await ask(off, request(kind, user(HS_ADMIN, '@hsadmin:media.test'))),
        { answer: true, calls: 1 },
        'maxCacheTimeSeconds 0: every call asks',
      );
    });
  }

  t.test("the matrix kind's whois probe does not ask about the caller", async (t) => {
    // The fixture lets anyone whois themselves (as Synapse does): a self-whois would make Alice an admin.
    const deps = depsWith(0);
    const res = await fetch(`${r.hs.url}/_matrix/client/v3/admin/whois/${encodeURIComponent('@alice:media.test')}`, {
      headers: { Authorization: `Bearer ${ALICE}` },
    });
    t.equal(res.status, 200, 'the fixture answers a self-whois');
    t.equal(await isLocalAdmin(deps, request('matrix', user(ALICE, '@alice:media.test'))), false);
    const probe = user(ALICE, '@media-repo-admin-probe:media.test');
    r.hs.tokens.set('probe-token', { userId: probe.userId });
    probe.token = 'probe-token';
    t.equal(await isLocalAdmin(deps, request('matrix', probe)), false, 'not even for a user named like the probe');
  });

  const opts = { timeoutMs: 5000, forwardedFor: '127.0.0.1', log: svc.log };
  const synapse = domainOf('synapse').homeserver;
  const matrix = domainOf('matrix').homeserver;

  t.test("a room's media (Synapse admin API)", async (t) => {
    const listed = { local: ['mxc://media.test/a', 'mxc://media.test/b'], remote: ['mxc://elsewhere.test/c'] };
    r.hs.roomMedia.set('!room:media.test', listed);
    t.same(await svc.homeserver.roomMedia(synapse, HS_ADMIN, '!room:media.test', opts), listed, 'both lists');
    t.same(await status(svc.homeserver.roomMedia(synapse, HS_ADMIN, '!nope:media.test', opts)), [404, 'M_NOT_FOUND']);
    t.same(await status(svc.homeserver.roomMedia(synapse, ALICE, '!room:media.test', opts)), [403, 'M_FORBIDDEN']);
    t.same(
      await status(svc.homeserver.roomMedia(matrix, HS_ADMIN, '!room:media.test', opts)),
      [400, 'M_INVALID_PARAM'],
      'needs adminApiKind synapse',
    );
    r.hs.failWith = 500;
    try {
      t.same(await status(svc.homeserver.roomMedia(synapse, HS_ADMIN, '!room:media.test', opts)), [502, 'M_UNKNOWN']);
    } finally {
      r.hs.failWith = null;
    }
  });

  t.test("every user's avatar, over pages of the user list", async (t) => {
    // 600 users with avatars and the token users without: two pages of 500.
    for (let i = 0; i < 600; i++)
      r.hs.avatars.set(`@u${String(i).padStart(3, '0')}:media.test`, `mxc://media.test/av${i}`);
    r.hs.avatars.set('@http:media.test', 'https://not-mxc.example/x');
    const before = r.hs.adminCalls;
    const avatars = await svc.homeserver.userAvatars(synapse, HS_ADMIN, opts);
    t.equal(r.hs.adminCalls - before, 2, 'two pages, following next_token');
    t.equal(avatars.size, 600, 'every mxc avatar, nothing else');
    t.ok(avatars.has('mxc://media.test/av0') && avatars.has('mxc://media.test/av599'), 'from both pages');
    t.same(await status(svc.homeserver.userAvatars(synapse, ALICE, opts)), [403, 'M_FORBIDDEN'], 'admins only');
    t.same(await status(svc.homeserver.userAvatars(matrix, HS_ADMIN, opts)), [400, 'M_INVALID_PARAM'], 'synapse only');
  });

  t.test("authenticate(ctx, 'localadmin') and callerIsLocalAdmin", async (t) => {
    const services = {
      config: svc.config,
      log: svc.log,
      auth: { config: svc.config, tokens: svc.tokens, homeserver: svc.homeserver, serverKeys: svc.serverKeys },
      roles: depsWith(0),
    } as unknown as Services;
    const ctxFor = (token: string | null): Ctx => ({
      req: {
        method: 'GET',
        path: '/_test',
        rawQuery: '',
        query: new URLSearchParams(),
        headers: token ? { authorization: `Bearer ${token}` } : {},
        remoteAddress: '127.0.0.1',
        body: null,
        aborted: () => false,
        onAbort: () => undefined,
      },
      params: {},
      serverName: SERVER_NAME,
      domain: domainOf('synapse'),
      user: null,
      svc: services,
      log: svc.log,
    });
    const admin = await authenticate(ctxFor(HS_ADMIN), 'localadmin');
    t.equal(admin?.userId, '@hsadmin:media.test', 'a local admin is let in');
    t.equal(admin?.isLocalAdmin, true);
    const before = r.hs.adminCalls;
    const repoAdmin = await authenticate(ctxFor(SECRET), 'localadmin');
    t.equal(repoAdmin?.isRepoAdmin, true, 'a repo admin is let in');
    t.equal(r.hs.adminCalls, before, 'without asking the homeserver');
    const refused = await authenticate(ctxFor(ALICE), 'localadmin').catch((e: MatrixError) => e);
    t.equal((refused as MatrixError).status, 403, 'a plain user is refused');
    t.equal((refused as MatrixError).errcode, 'M_FORBIDDEN');
    t.match((refused as MatrixError).message, /admins of media\.test/);
    t.equal(((await authenticate(ctxFor(GUEST), 'localadmin').catch((e) => e)) as MatrixError).status, 403, 'guest');
    t.equal(((await authenticate(ctxFor(null), 'localadmin').catch((e) => e)) as MatrixError).status, 401, 'no token');

    const ctx = ctxFor(ALICE);
    t.equal(await callerIsLocalAdmin(ctx), false, 'no user: not a local admin');
    ctx.user = await authenticate(ctx, 'user');
    const mark = r.hs.adminCalls;
    t.equal(await callerIsLocalAdmin(ctx), false, 'a plain user is not');
    t.equal(await callerIsLocalAdmin(ctx), false);
    t.equal(r.hs.adminCalls - mark, 1, 'asked once per request');
    const adminCtx = ctxFor(HS_ADMIN);
    adminCtx.user = await authenticate(adminCtx, 'user');
    t.equal(await callerIsLocalAdmin(adminCtx), true, 'a local admin is');
  });
});
