import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createClient, getHttpUriForMxc, MatrixError, type MatrixClient } from 'matrix-js-sdk';
import { drivers } from './helpers/databases.js';
import { ALICE, GUEST } from './helpers/repo.js';
import { startRepoWithHomeservers } from './helpers/auth-hosts.js';

// matrix-js-sdk 37.5.0 (the last release for Node 20; 37.6 needs 22) against media-repo: its requests carry Host 127.0.0.1:PORT, so the
// repo serves a homeserver named `127.0.0.1` (Host without the port falls back to it) and
// ignores X-Forwarded-Host. Without XMLHttpRequest (Node) the SDK uploads through fetch.

// Polyfill: uploadContent calls Promise.withResolvers, which Node only has from 22 on.
if (!('withResolvers' in Promise)) {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value<T>() {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((a, b) => {
        resolve = a;
        reject = b;
      });
      return { promise, resolve, reject };
    },
  });
}

type SdkLogger = NonNullable<Parameters<typeof createClient>[0]['logger']>;
/** Keeps the SDK's per-request log lines out of the TAP stream. */
const quiet: SdkLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, getChild: () => quiet };
const SERVER = '127.0.0.1';

for (const d of drivers()) {
  t.test(`matrix-js-sdk client (${d.name})`, { skip: d.skip }, async (t) => {
    const r = await startRepoWithHomeservers(d.name, [SERVER], { repo: { useForwardedHost: false } });
    t.teardown(() => r.close());
    r.hs.tokens.set(ALICE, { userId: `@alice:${SERVER}` });
    const client: MatrixClient = createClient({
      baseUrl: r.url,
      accessToken: ALICE,
      userId: `@alice:${SERVER}`,
      logger: quiet,
    });
    t.teardown(() => client.stopClient());

    t.test('uploadContent, then the authenticated URL serves the same bytes and type', async (t) => {
      const bytes = randomBytes(50_000);
      const res = await client.uploadContent(bytes, { name: 'cat picture.png', type: 'image/png' });
      t.match(res.content_uri, new RegExp(`^mxc://${SERVER.replace(/\./g, '\\.')}/[A-Za-z0-9_-]{24}$`));

      const url = getHttpUriForMxc(r.url, res.content_uri, undefined, undefined, undefined, false, true, true);
      t.match(url, `${r.url}/_matrix/client/v1/media/download/${SERVER}/`, 'the SDK builds an authenticated URL');
      const dl = await fetch(url, { headers: { Authorization: `Bearer ${ALICE}` } });
      t.equal(dl.status, 200);
      t.equal(dl.headers.get('content-type'), 'image/png');
      t.equal(dl.headers.get('content-disposition'), "inline; filename*=utf-8''cat%20picture.png");
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(bytes), 'bytes round-trip');

      const noAuth = await fetch(url);
      t.equal(noAuth.status, 401, 'the authenticated URL needs the token');
      await noAuth.arrayBuffer();
      const legacy = getHttpUriForMxc(r.url, res.content_uri);
      t.match(legacy, '/_matrix/media/v3/download/');
      const frozen = await fetch(legacy);
      t.equal(frozen.status, 404, 'the legacy URL does not serve media uploaded after the freeze');
      await frozen.arrayBuffer();
    });

    t.test('uploadContent without a name or type', async (t) => {
      const bytes = Buffer.from('plain bytes from the sdk');
      const res = await client.uploadContent(bytes, { includeFilename: false });
      const url = getHttpUriForMxc(r.url, res.content_uri, undefined, undefined, undefined, false, true, true);
      const dl = await fetch(url, { headers: { Authorization: `Bearer ${ALICE}` } });
      t.equal(dl.headers.get('content-type'), 'application/octet-stream', 'the SDK default type is stored');
      t.equal(await dl.text(), 'plain bytes from the sdk');
    });

    t.test('getMediaConfig on both prefixes', async (t) => {
      t.same(await client.getMediaConfig(true), { 'm.upload.size': 104857600 }, 'authenticated (client v1)');
      t.same(await client.getMediaConfig(false), { 'm.upload.size': 104857600 }, 'legacy (media v3)');
    });

    t.test('the SDK sees v1.11 (authenticated media) in /versions', async (t) => {
      t.equal(await client.isVersionSupported('v1.11'), true);
    });

    t.test('errors reach the SDK as MatrixErrors', async (t) => {
      r.hs.tokens.set(GUEST, { userId: `@guest:${SERVER}`, isGuest: true });
      const guest = createClient({ baseUrl: r.url, accessToken: GUEST, userId: `@guest:${SERVER}`, logger: quiet });
      const err = await guest.uploadContent(Buffer.from('x')).then(
        () => null,
        (e: unknown) => e,
      );
      t.ok(err instanceof MatrixError, 'a MatrixError');
      t.equal((err as MatrixError).errcode, 'M_GUEST_ACCESS_FORBIDDEN');
      t.equal((err as MatrixError).httpStatus, 403);
      const bad = createClient({ baseUrl: r.url, accessToken: 'nope', userId: `@x:${SERVER}`, logger: quiet });
      const err2 = await bad.getMediaConfig(true).then(
        () => null,
        (e: unknown) => e,
      );
      t.equal((err2 as MatrixError).errcode, 'M_UNKNOWN_TOKEN');
      t.equal((err2 as MatrixError).httpStatus, 401);
    });
  });
}
