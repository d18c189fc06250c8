import t from 'tap';
import { randomBytes } from 'node:crypto';
import { drivers } from './helpers/databases.js';
import { ALICE, GUEST } from './helpers/repo.js';
import { requestRaw, startRepoWithHomeservers, type RawOptions, type RawResponse } from './helpers/auth-hosts.js';

// Host → homeserver routing (in-process requests, which send any Host as given, so Host itself
// is under test), every route family, the common CORS and security headers, and OPTIONS.
// Nothing here depends on the socket.

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
const A = 'media.test';
const B = '127.0.0.1:8008';
const ID = /^mxc:\/\/(.+)\/([A-Za-z0-9_-]{24})$/;

function mxcParts(res: RawResponse): { server: string; id: string } {
  const m = ID.exec(res.json<{ content_uri: string }>().content_uri);
  return { server: m![1]!, id: m![2]! };
}

function checkCommonHeaders(t: Tap, res: RawResponse, what: string): void {
  t.equal(res.headers['access-control-allow-origin'], '*', `${what}: CORS origin`);
  t.match(res.headers['access-control-allow-methods'] ?? '', /OPTIONS/, `${what}: CORS methods`);
  t.match(res.headers['access-control-allow-headers'] ?? '', /Authorization/, `${what}: CORS headers`);
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  t.match(res.headers['content-security-policy'] ?? '', /sandbox/, `${what}: CSP sandbox`);
  t.equal(res.headers['cross-origin-resource-policy'], 'cross-origin', `${what}: CORP`);
}

for (const d of drivers().filter((x) => x.name === 'pglite')) {
  t.test(`routing (${d.name})`, async (t) => {
    // A: forwarded host honoured, media frozen. B: Host only, legacy downloads allowed.
    const a = await startRepoWithHomeservers(d.name, [A, B]);
    t.teardown(() => a.close());
    const b = await startRepoWithHomeservers(d.name, [A, B], {
      repo: { useForwardedHost: false, freezeUnauthenticatedMedia: false },
    });
    t.teardown(() => b.close());
    const reqA = (o: RawOptions) => requestRaw(a.repo, o);
    const reqB = (o: RawOptions) => requestRaw(b.repo, o);
    const upload = (req: typeof reqA, host: string, path = '/_matrix/media/v3/upload', body = randomBytes(256)) =>
      req({ method: 'POST', path, host, token: ALICE, body, headers: { 'Content-Type': 'application/x-route' } });
    const config = '/_matrix/client/v1/media/config';

    t.test('Host picks the homeserver: exact, port stripped, exact with port', async (t) => {
      t.equal((await reqA({ path: config, host: A, token: ALICE })).status, 200, 'Host: media.test');
      t.equal((await reqA({ path: config, host: `${A}:8448`, token: ALICE })).status, 200, 'Host: media.test:8448');
      t.equal((await reqA({ path: config, host: 'MEDIA.TEST', token: ALICE })).status, 200, 'case-insensitive');
      t.equal(mxcParts(await upload(reqA, A)).server, A, 'upload via Host A is mxc://A');
      t.equal(mxcParts(await upload(reqA, B)).server, B, 'Host 127.0.0.1:8008 selects that homeserver exactly');
      const other = await reqA({ path: config, host: '127.0.0.1:9999', token: ALICE });
      t.equal(other.status, 502, 'Host 127.0.0.1:9999 is not 127.0.0.1:8008');
      t.equal(other.json<{ errcode: string }>().errcode, 'M_UNKNOWN');
      t.equal((await reqA({ path: config, host: 'nonsense', token: ALICE })).status, 502, 'unknown Host');
    });

    t.test('X-Forwarded-Host: honoured with useForwardedHost, ignored without', async (t) => {
      const fwd = { 'X-Forwarded-Host': A };
      t.equal(
        (await reqA({ path: config, host: 'nonsense', token: ALICE, headers: fwd })).status,
        200,
        'A: forwarded host used',
      );
      const up = await reqA({
        method: 'POST',
        path: '/_matrix/media/v3/upload',
        host: A,
        token: ALICE,
        body: 'x',
        headers: { 'X-Forwarded-Host': B },
      });
      t.equal(mxcParts(up).server, B, 'A: X-Forwarded-Host wins over Host');
      t.equal(
        (await reqB({ path: config, host: 'nonsense', token: ALICE, headers: fwd })).status,
        502,
        'B: forwarded host ignored',
      );
      t.equal(
        (await reqB({ path: config, host: A, token: ALICE, headers: { 'X-Forwarded-Host': 'nonsense' } })).status,
        200,
        'B: Host used',
      );
    });

    t.test('media of either homeserver is downloadable by its mxc through either Host', async (t) => {
      const body = randomBytes(500);
      const onB = mxcParts(await upload(reqA, B, undefined, body));
      t.equal(onB.server, B);
      for (const host of [A, B]) {
        const dl = await reqA({
          path: `/_matrix/client/v1/media/download/${onB.server}/${onB.id}`,
          host,
          token: ALICE,
        });
        t.equal(dl.status, 200, `via Host ${host}`);
        t.ok(dl.body.equals(body), `bytes via Host ${host}`);
      }
      const missing = await reqA({ path: `/_matrix/client/v1/media/download/${A}/${onB.id}`, host: A, token: ALICE });
      t.equal(missing.status, 404, 'the same ID under the other server name does not exist');
    });

    t.test('upload on r0, v1 and v3; legacy download only without the freeze', async (t) => {
      for (const v of ['r0', 'v1', 'v3']) {
        const body = randomBytes(300);
        const frozen = mxcParts(await upload(reqA, A, `/_matrix/media/${v}/upload`, body));
        const open = mxcParts(await upload(reqB, A, `/_matrix/media/${v}/upload`, body));
        for (const dv of ['r0', 'v1', 'v3']) {
          const legacyA = await reqA({ path: `/_matrix/media/${dv}/download/${A}/${frozen.id}`, host: A });
          t.equal(legacyA.status, 404, `frozen: legacy ${dv} download of a ${v} upload is 404`);
          const legacyB = await reqB({ path: `/_matrix/media/${dv}/download/${A}/${open.id}/file.bin`, host: A });
          t.equal(legacyB.status, 200, `unfrozen: legacy ${dv} download of a ${v} upload`);
          t.ok(legacyB.body.equals(body), `unfrozen: legacy ${dv} bytes`);
          t.equal(legacyB.headers['content-type'], 'application/x-route');
        }
        const authed = await reqA({
          path: `/_matrix/client/v1/media/download/${A}/${frozen.id}`,
          host: A,
          token: GUEST,
        });
        t.equal(authed.status, 200, `frozen: authenticated download of a ${v} upload`);
        t.ok(authed.body.equals(body));
      }
    });

    t.test('config on r0, v3 and client v1', async (t) => {
      for (const p of ['/_matrix/media/r0/config', '/_matrix/media/v3/config', config]) {
        const res = await reqA({ path: p, host: A, token: ALICE });
        t.equal(res.status, 200, p);
        t.same(res.json(), { 'm.upload.size': 104857600 }, `${p} body`);
      }
    });

    t.test('healthz and media/version need no configured Host', async (t) => {
      const get = await reqA({ path: '/healthz', host: 'nonsense' });
      t.equal(get.status, 200);
      t.same(get.json(), { ok: true, status: 'alive' });
      t.equal(get.headers['cache-control'], 'no-store');
      const head = await reqA({ method: 'HEAD', path: '/healthz', host: 'nonsense' });
      t.equal(head.status, 200, 'HEAD /healthz');
      t.equal(head.body.length, 0, 'HEAD has no body');
      const ver = await reqA({ path: '/_matrix/media/version', host: 'nonsense' });
      t.equal(ver.status, 200);
      t.match(ver.json(), { Version: String, server: 'media-repo' });
    });

    t.test('client/versions is proxied with v1.11 added and other keys kept', async (t) => {
      const res = await reqA({ path: '/_matrix/client/versions', host: A });
      t.equal(res.status, 200);
      t.same(res.json(), { versions: ['v1.1', 'v1.5', 'v1.11'], unstable_features: { x: true } });
      t.equal(
        (await reqA({ path: '/_matrix/client/versions', host: 'nonsense' })).status,
        502,
        'needs a configured Host',
      );
    });

    t.test('unknown endpoints and wrong methods', async (t) => {
      const unknown = await reqA({ path: '/_matrix/media/v3/nothing', host: A, token: ALICE });
      t.equal(unknown.status, 404);
      t.equal(unknown.json<{ errcode: string }>().errcode, 'M_UNRECOGNIZED');
      const wrong = await reqA({ method: 'DELETE', path: '/_matrix/media/v3/upload', host: A, token: ALICE });
      t.equal(wrong.status, 405);
      t.equal(wrong.json<{ errcode: string }>().errcode, 'M_UNRECOGNIZED');
    });

    t.test('CORS and security headers on errors too', async (t) => {
      const e401 = await reqA({ path: config, host: A });
      t.equal(e401.status, 401);
      checkCommonHeaders(t, e401, '401');
      const e404 = await reqA({
        path: `/_matrix/client/v1/media/download/${A}/AAAAAAAAAAAAAAAAAAAAAAAA`,
        host: A,
        token: ALICE,
      });
      t.equal(e404.status, 404);
      checkCommonHeaders(t, e404, '404');
      const e502 = await reqA({ path: config, host: 'nonsense', token: ALICE });
      t.equal(e502.status, 502);
      checkCommonHeaders(t, e502, '502');
      const ok = await reqA({ path: '/healthz', host: A });
      checkCommonHeaders(t, ok, '200');
    });

    t.test('OPTIONS anywhere: 200 with CORS headers, no auth, no Host needed', async (t) => {
      const before = a.hs.whoamiCalls;
      const paths = ['/_matrix/media/v3/upload', `/_matrix/client/v1/media/download/${A}/abc`, config, '/not/a/route'];
      for (const path of paths) {
        for (const host of [A, 'nonsense']) {
          const res = await reqA({
            method: 'OPTIONS',
            path,
            host,
            headers: { 'Access-Control-Request-Method': 'POST', Origin: 'https://app.example' },
          });
          t.equal(res.status, 200, `OPTIONS ${path} (Host ${host})`);
          checkCommonHeaders(t, res, `OPTIONS ${path}`);
        }
      }
      t.equal(a.hs.whoamiCalls, before, 'no token was checked');
    });
  });
}

const pg = drivers().find((x) => x.name === 'postgres')!;
t.test('routing smoke (postgres)', { skip: pg.skip }, async (t) => {
  const r = await startRepoWithHomeservers('postgres', [A, B]);
  t.teardown(() => r.close());
  const body = randomBytes(1000);
  const up = await requestRaw(r.repo, {
    method: 'POST',
    path: '/_matrix/media/v3/upload',
    host: B,
    token: ALICE,
    body,
  });
  t.equal(up.status, 200);
  const { server, id } = mxcParts(up);
  t.equal(server, B);
  const dl = await requestRaw(r.repo, {
    path: `/_matrix/client/v1/media/download/${server}/${id}`,
    host: `${A}:443`,
    token: ALICE,
  });
  t.equal(dl.status, 200);
  t.ok(dl.body.equals(body));
  t.equal(
    (await requestRaw(r.repo, { path: '/_matrix/client/v1/media/config', host: '127.0.0.1:9999', token: ALICE }))
      .status,
    502,
  );
});
