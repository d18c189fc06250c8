import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';

// RunningRepo.request (src/http/in-process.ts) is the server's own request path without a
// socket: routing, errors, the common header block, ETag/304, Range and HEAD all come out of
// handle-request.ts and respond.ts exactly as they do for a client on the socket.

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** Headers uWS adds on its own (not this server's code) and the connection's keep-alive. */
const SOCKET_ONLY = new Set(['date', 'uwebsockets', 'connection', 'keep-alive']);

function headersOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (!SOCKET_ONLY.has(k)) out[k] = v;
  });
  return out;
}

function checkCommonHeaders(t: Tap, res: Response, what: string): void {
  t.equal(res.headers.get('access-control-allow-origin'), '*', `${what}: CORS origin`);
  t.match(res.headers.get('access-control-allow-methods') ?? '', /OPTIONS/, `${what}: CORS methods`);
  t.match(res.headers.get('access-control-allow-headers') ?? '', /Authorization/, `${what}: CORS headers`);
  t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
  t.match(res.headers.get('content-security-policy') ?? '', /sandbox/, `${what}: CSP sandbox`);
  t.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin', `${what}: CORP`);
}

async function uploadInProcess(t: Tap, r: TestRepo, body: Buffer): Promise<string> {
  const res = await r.request('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': 'application/x-in-process' },
    token: ALICE,
  });
  t.equal(res.status, 200, 'upload accepted');
  const { content_uri } = (await res.json()) as { content_uri: string };
  return content_uri.split('/').pop()!;
}

t.test('in-process requests take the real request path', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  const download = (id: string) => `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;

  t.test('unknown route: 404 M_UNRECOGNIZED with the CORS and security headers', async (t) => {
    const res = await r.request('/_matrix/media/v3/nothing', { token: ALICE });
    t.equal(res.status, 404);
    t.equal(res.headers.get('content-type'), 'application/json');
    t.equal(((await res.json()) as { errcode: string }).errcode, 'M_UNRECOGNIZED');
    checkCommonHeaders(t, res, '404');
  });

  t.test('wrong method: 405', async (t) => {
    const res = await r.request('/_matrix/media/v3/upload', { method: 'DELETE', token: ALICE });
    t.equal(res.status, 405);
    t.equal(((await res.json()) as { errcode: string }).errcode, 'M_UNRECOGNIZED');
  });

  t.test('errors thrown by a handler come back as Matrix JSON', async (t) => {
    const missing = await r.request(download('AAAAAAAAAAAAAAAAAAAAAAAA'), { token: ALICE });
    t.equal(missing.status, 404);
    t.equal(missing.headers.get('content-type'), 'application/json');
    t.match(await missing.json(), { errcode: 'M_NOT_FOUND', error: String });
    const anonymous = await r.request('/_matrix/client/v1/media/config');
    t.equal(anonymous.status, 401);
    t.match(await anonymous.json(), { errcode: 'M_MISSING_TOKEN' });
    checkCommonHeaders(t, anonymous, '401');
  });

  t.test('upload, then download the same bytes with an ETag; HEAD, Range and If-None-Match', async (t) => {
    // Past the body source's 256 KiB early buffer: delivered in chunks, with pause and resume.
    const body = randomBytes(1_500_000);
    const id = await uploadInProcess(t, r, body);

    const get = await r.request(download(id), { token: ALICE });
    t.equal(get.status, 200);
    t.equal(get.headers.get('content-type'), 'application/x-in-process');
    t.equal(get.headers.get('content-length'), String(body.length));
    t.equal(get.headers.get('accept-ranges'), 'bytes');
    const etag = get.headers.get('etag');
    t.match(etag, /^"[0-9a-f]{64}"$/, 'ETag');
    t.ok(Buffer.from(await get.arrayBuffer()).equals(body), 'the uploaded bytes');

    const head = await r.request(download(id), { method: 'HEAD', token: ALICE });
    t.equal(head.status, 200, 'HEAD');
    t.equal(head.headers.get('content-length'), String(body.length), 'HEAD names the length a GET sends');
    t.equal(head.headers.get('etag'), etag, 'HEAD: same ETag');
    t.equal(head.body, null, 'HEAD: no body');

    const range = await r.request(download(id), { headers: { Range: 'bytes=1000-1999' }, token: ALICE });
    t.equal(range.status, 206);
    t.equal(range.headers.get('content-range'), `bytes 1000-1999/${body.length}`);
    t.equal(range.headers.get('content-length'), '1000');
    t.ok(Buffer.from(await range.arrayBuffer()).equals(body.subarray(1000, 2000)), 'the range bytes');

    const unsatisfiable = await r.request(download(id), { headers: { Range: `bytes=${body.length}-` }, token: ALICE });
    t.equal(unsatisfiable.status, 416);
    t.equal(unsatisfiable.headers.get('content-range'), `bytes */${body.length}`);

    const cached = await r.request(download(id), { headers: { 'If-None-Match': etag! }, token: ALICE });
    t.equal(cached.status, 304);
    t.equal(cached.headers.get('etag'), etag, '304 carries the ETag');
    t.equal(cached.headers.get('content-length'), null, '304 names no length');
    t.equal(cached.body, null, '304: no body');
    const changed = await r.request(download(id), { headers: { 'If-None-Match': '"other"' }, token: ALICE });
    t.equal(changed.status, 200, 'another ETag: the content');
    await changed.arrayBuffer();
  });

  t.test('the same status and headers as on the socket', async (t) => {
    const id = await uploadInProcess(t, r, randomBytes(5000));
    for (const [path, init] of [
      [download(id), { token: ALICE }],
      [download(id), { token: ALICE, headers: { Range: 'bytes=0-9' } }],
      [download(id), { token: ALICE, method: 'HEAD' }],
      ['/_matrix/media/v3/nothing', { token: ALICE }],
      ['/_matrix/client/v1/media/config', {}],
      ['/healthz', { method: 'OPTIONS' }],
    ] as const) {
      const what = `${init.method ?? 'GET'} ${path} ${JSON.stringify(init.headers ?? {})}`;
      const socket = await r.fetch(path, init);
      const inProcess = await r.request(path, init);
      t.equal(inProcess.status, socket.status, `${what}: status`);
      t.same(headersOf(inProcess), headersOf(socket), `${what}: headers`);
      t.ok(Buffer.from(await inProcess.arrayBuffer()).equals(Buffer.from(await socket.arrayBuffer())), `${what}: body`);
    }
  });

  t.test('a WHATWG Request: Host from its URL, body through onData', async (t) => {
    const config = await r.repo.request(
      new Request(`http://${SERVER_NAME}/_matrix/client/v1/media/config`, {
        headers: { Authorization: `Bearer ${ALICE}` },
      }),
    );
    t.equal(config.status, 200, 'Host names the homeserver');
    t.same(await config.json(), { 'm.upload.size': 104857600 });
    const body = Buffer.from('sent as a Request');
    const up = await r.repo.request(
      new Request(`http://${SERVER_NAME}/_matrix/media/v3/upload`, {
        method: 'POST',
        body,
        headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'text/plain' },
      }),
    );
    t.equal(up.status, 200);
    const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const back = await r.request(download(id), { token: ALICE });
    t.equal(await back.text(), 'sent as a Request');
  });

  t.test('the remote address: 127.0.0.1 unless given', async (t) => {
    // client/versions passes it on to the homeserver as X-Forwarded-For.
    const versions = { url: '/_matrix/client/versions', headers: { 'x-forwarded-host': SERVER_NAME } };
    t.equal((await r.repo.request(versions)).status, 200);
    t.equal(r.hs.lastHeaders['x-forwarded-for'], '127.0.0.1');
    t.equal((await r.repo.request(versions, { remoteAddress: '203.0.113.7' })).status, 200);
    t.equal(r.hs.lastHeaders['x-forwarded-for'], '203.0.113.7');
  });

  t.test('an aborted signal rejects, as fetch does', async (t) => {
    await t.rejects(r.request('/healthz', { signal: AbortSignal.abort() }), { name: 'AbortError' });
  });
});
