// Issue 13 item 1: a keep-alive connection must survive every kind of response, as nginx's
// upstream keepalive, CDNs and clients that HEAD before they GET reuse it. uWS 20.30 left a
// connection expecting the body a HEAD announced, and dropped the next request on it unanswered.
// Every request here goes over one raw socket (RawConn), so nothing retries behind our back the
// way fetch() silently does for idempotent requests.
import t from 'tap';
import sharp from 'sharp';
import { ALICE, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { RawConn, errcode, header, type RawResponse } from './helpers/hostile-http.js';

const r = await startTestRepo('pglite', { uploads: { minBytes: 1, maxBytes: 1024 * 1024 } });
t.teardown(() => r.close());

const AUTH = { Host: SERVER_NAME, Authorization: `Bearer ${ALICE}` };
const body = Buffer.from('keep-alive body: seventeen+ bytes of text');
const up = await r.fetch('/_matrix/media/v3/upload?filename=a.txt', {
  method: 'POST',
  token: ALICE,
  body,
  headers: { 'Content-Type': 'text/plain' },
});
const mediaId = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
const png = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#204060' } })
  .png()
  .toBuffer();
const upPng = await r.fetch('/_matrix/media/v3/upload?filename=p.png', {
  method: 'POST',
  token: ALICE,
  body: new Uint8Array(png),
  headers: { 'Content-Type': 'image/png' },
});
const pngId = ((await upPng.json()) as { content_uri: string }).content_uri.split('/').pop()!;
const download = `/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;
const thumbnail = `/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${pngId}?width=64&height=64&method=scale`;

/** Sends one request on `c` and waits for its answer: the nth on this connection. */
async function ask(
  c: RawConn,
  n: number,
  method: string,
  path: string,
  headers: Record<string, string | number> = {},
  reqBody?: Buffer,
): Promise<RawResponse> {
  await c.head(method, path, { ...AUTH, ...headers, ...(reqBody ? { 'Content-Length': reqBody.length } : {}) });
  if (reqBody) await c.write(reqBody);
  const res = await c.response(n);
  if (!res) throw new Error(`request ${n} (${method} ${path}) got no answer: the connection closed`);
  return res;
}

t.test('one connection carries every kind of response, HEAD included', async (t) => {
  const c = await RawConn.open(r.port);
  t.teardown(() => c.destroy());
  let n = 0;
  const head = await ask(c, n++, 'HEAD', download);
  t.equal(head.status, 200, 'HEAD');
  t.equal(header(head, 'content-length'), String(body.length), 'HEAD names the length a GET sends');
  t.equal(head.body.length, 0);
  const etag = header(head, 'etag')!;

  const get = await ask(c, n++, 'GET', download);
  t.equal(get.status, 200, 'GET after HEAD on the same connection');
  t.ok(get.body.equals(body), 'the bytes');

  const notModified = await ask(c, n++, 'GET', download, { 'If-None-Match': etag });
  t.equal(notModified.status, 304);
  t.equal(header(notModified, 'content-length'), undefined, 'a 304 names no length');
  const headNotModified = await ask(c, n++, 'HEAD', download, { 'If-None-Match': etag });
  t.equal(headNotModified.status, 304, 'HEAD 304');

  const partial = await ask(c, n++, 'GET', download, { Range: 'bytes=0-3' });
  t.equal(partial.status, 206);
  t.equal(partial.body.toString(), body.subarray(0, 4).toString());
  const headPartial = await ask(c, n++, 'HEAD', download, { Range: 'bytes=2-5' });
  t.equal(headPartial.status, 206, 'HEAD 206');
  t.equal(header(headPartial, 'content-length'), '4');
  const unsatisfiable = await ask(c, n++, 'GET', download, { Range: 'bytes=99999-' });
  t.equal(unsatisfiable.status, 416);
  const headUnsatisfiable = await ask(c, n++, 'HEAD', download, { Range: 'bytes=99999-' });
  t.equal(headUnsatisfiable.status, 416, 'HEAD 416');

  const missing = await ask(c, n++, 'GET', `/_matrix/client/v1/media/download/${SERVER_NAME}/nosuchmedia`);
  t.equal(missing.status, 404);
  t.equal(errcode(missing), 'M_NOT_FOUND', 'an error answer');
  const headMissing = await ask(c, n++, 'HEAD', `/_matrix/client/v1/media/download/${SERVER_NAME}/nosuchmedia`);
  t.equal(headMissing.status, 404, 'HEAD of an error');
  t.equal(headMissing.body.length, 0);
  const unknownEndpoint = await ask(c, n++, 'GET', '/_matrix/media/v3/nonsense');
  t.equal(errcode(unknownEndpoint), 'M_UNRECOGNIZED');
  const noToken = await ask(c, n++, 'GET', download, { Authorization: '' });
  t.equal(noToken.status, 401, '401 without a token');
  const options = await ask(c, n++, 'OPTIONS', download);
  t.equal(options.status, 200, 'OPTIONS');

  const headThumb = await ask(c, n++, 'HEAD', thumbnail);
  t.equal(headThumb.status, 200, 'HEAD thumbnail');
  const thumb = await ask(c, n++, 'GET', thumbnail);
  t.equal(thumb.status, 200, 'GET thumbnail after HEAD');
  t.equal(String(thumb.body.length), header(headThumb, 'content-length'), 'the HEAD named the thumbnail length');

  const uploaded = await ask(
    c,
    n++,
    'POST',
    '/_matrix/media/v3/upload?filename=b.txt',
    { 'Content-Type': 'text/plain' },
    Buffer.from('uploaded on a reused connection'),
  );
  t.equal(uploaded.status, 200, 'an upload on the reused connection');
  const last = await ask(c, n++, 'GET', download);
  t.equal(last.status, 200, 'and a download after it');
  t.notOk(c.closed, `the connection stayed open through ${n} requests`);
});

t.test('a refused upload whose body was not read: the answer arrives, then the connection closes', async (t) => {
  for (const [name, headers, status] of [
    ['over uploads.maxBytes', { ...AUTH, 'Content-Length': 50 * 1024 * 1024 }, 413],
    ['no access token', { Host: SERVER_NAME, 'Content-Length': 50 * 1024 * 1024 }, 401],
  ] as const) {
    const c = await RawConn.open(r.port);
    t.teardown(() => c.destroy());
    await c.head('POST', '/_matrix/media/v3/upload', headers);
    await c.write(Buffer.alloc(64 * 1024)); // part of the body, not all of it
    const res = await c.response(0);
    t.equal(res?.status, status, `${name}: ${status}`);
    t.equal(header(res!, 'connection'), 'close', `${name}: the answer says the connection closes`);
    t.ok(await c.waitClosed(), `${name}: and it does, so no body byte is read as a request`);
  }
  const after = await RawConn.open(r.port);
  t.teardown(() => after.destroy());
  t.equal((await ask(after, 0, 'GET', download)).status, 200, 'a new connection is served');
});

t.test('an upload refused after its whole body arrived leaves the connection usable', async (t) => {
  const c = await RawConn.open(r.port);
  t.teardown(() => c.destroy());
  const refused = await ask(
    c,
    0,
    'POST',
    '/_matrix/media/v3/upload',
    { Authorization: 'Bearer not-a-token' },
    Buffer.from('small body'),
  );
  t.equal(refused.status, 401);
  if (header(refused, 'connection') === 'close') {
    t.ok(await c.waitClosed(), 'said close, and closed');
  } else {
    t.equal((await ask(c, 1, 'GET', download)).status, 200, 'kept open, and the next request is answered');
  }
});
