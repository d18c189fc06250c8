import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { drivers } from './helpers/databases.js';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import {
  RawConn,
  chunk,
  dispositionFilename,
  errcode,
  header,
  rawHead,
  rawRequest,
  type RawResponse,
} from './helpers/hostile-http.js';
import { assertNothingStored, mediaRowCount, snapshot, stagingFiles, waitFor } from './helpers/hostile-store.js';

// Requests a hostile or broken client can send: bodies that lie about their size, names
// built to split headers, paths built to escape the datastore, unknown hosts, missing
// tokens, bad ranges, aborted uploads. Each case asserts the status, the errcode and that
// nothing was stored that should not have been.

const MAX = 65536;
const MIN = 16;
const UPLOAD = '/_matrix/media/v3/upload';

/** Raw request headers for our homeserver, with a token unless `token` is null. */
function hdrs(
  token: string | null = ALICE,
  extra: Record<string, string | number> = {},
): Record<string, string | number> {
  return { Host: SERVER_NAME, ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function fetchUpload(r: TestRepo, body: Buffer, name?: string): Promise<Response> {
  const q = name === undefined ? '' : `?filename=${encodeURIComponent(name)}`;
  return r.fetch(`${UPLOAD}${q}`, { method: 'POST', body: new Uint8Array(body), token: ALICE });
}

async function mediaId(res: Response): Promise<string> {
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

function isRefusal(res: RawResponse): boolean {
  const code = errcode(res);
  return (
    (res.status === 400 && code === 'M_INVALID_PARAM') ||
    (res.status === 404 && (code === 'M_NOT_FOUND' || code === 'M_UNRECOGNIZED')) ||
    // `download/a/b/ID` routes to server `a`'s media `b`: a remote server that cannot be reached.
    (res.status === 502 && code === 'M_UNKNOWN')
  );
}

for (const d of drivers()) {
  t.test(`hostile input (${d.name})`, { skip: d.skip }, async (t) => {
    const small = await startTestRepo(d.name, { uploads: { maxBytes: MAX, minBytes: MIN } });
    t.teardown(() => small.close());
    const big = await startTestRepo(d.name);
    t.teardown(() => big.close());
    const sdb = small.repo.services.db;

    t.test('1. chunked body past maxBytes: 413, nothing stored', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const c = await RawConn.open(small.port);
      await c.head(
        'POST',
        UPLOAD,
        hdrs(ALICE, { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' }),
      );
      // Up to 4x the limit; the server may stop reading (and close) long before.
      for (let sent = 0; sent < 4 * MAX && !c.closed && c.responses.length === 0; sent += 4096)
        await c.write(chunk(randomBytes(4096)));
      const res = await c.response();
      c.destroy();
      t.equal(res?.status, 413);
      t.equal(errcode(res!), 'M_TOO_LARGE');
      await assertNothingStored(t, sdb, small.mediaDir, before, 'chunked over the limit');
      for (const [n, status] of [
        [MAX, 200],
        [MAX + 1, 413],
      ] as const) {
        const c2 = await RawConn.open(small.port);
        await c2.head('POST', UPLOAD, hdrs(ALICE, { 'Transfer-Encoding': 'chunked' }));
        await c2.write(Buffer.concat([chunk(randomBytes(n - 1)), chunk(randomBytes(1)), chunk(Buffer.alloc(0))]));
        t.equal((await c2.response())?.status, status, `chunked body of exactly ${n} bytes`);
        c2.destroy();
      }
    });

    t.test('2. Content-Length over maxBytes: 413 before the body is read', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const c = await RawConn.open(small.port);
      await c.head('POST', UPLOAD, hdrs(ALICE, { 'Content-Length': 500_000_000 }));
      const res = await c.response(0, 5000); // no body byte was sent: an answer means it did not wait
      t.equal(res?.status, 413);
      t.equal(errcode(res!), 'M_TOO_LARGE');
      t.ok(await c.waitClosed(5000), 'the server closes the connection instead of draining 500 MB');
      c.destroy();
      // uWS itself drops a connection whose Content-Length has 10 or more digits, before
      // any handler runs: no answer, but nothing stored either.
      const huge = await RawConn.open(small.port);
      await huge.head('POST', UPLOAD, hdrs(ALICE, { 'Content-Length': 10 * 1024 ** 3 }));
      const hres = await huge.response(0, 5000);
      t.ok(
        hres === null ? huge.closed : hres.status === 413,
        `10 GiB declared: ${hres ? hres.status : 'connection closed'}`,
      );
      huge.destroy();
      await assertNothingStored(t, sdb, small.mediaDir, before, 'declared over the limit');
      const over = await rawRequest(small.port, 'POST', UPLOAD, hdrs(ALICE, { 'Content-Length': MAX + 1 }));
      t.same([over.status, errcode(over)], [413, 'M_TOO_LARGE'], 'one byte over, declared');
      const at = await rawRequest(small.port, 'POST', UPLOAD, hdrs(ALICE, { 'Content-Length': MAX }), randomBytes(MAX));
      t.equal(at.status, 200, 'exactly maxBytes, declared');
    });

    t.test('3a. Content-Length larger than the body, then the client closes: nothing stored', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const c = await RawConn.open(small.port);
      await c.head('POST', UPLOAD, hdrs(ALICE, { 'Content-Length': 60_000 }));
      await c.write(randomBytes(20_000));
      t.ok(await waitFor(() => stagingFiles(small.mediaDir).length > 0), 'the upload reached a staging file');
      c.destroy();
      await assertNothingStored(t, sdb, small.mediaDir, before, 'short body');
    });

    t.test('3b. Content-Length smaller than the body: exactly the declared bytes are stored', async (t) => {
      const rows = await mediaRowCount(sdb);
      const declared = randomBytes(100);
      const c = await RawConn.open(small.port);
      // One write: head, the declared bytes, then a surplus that can only be the start of a
      // next request on this connection, never media.
      await c.write(
        Buffer.concat([
          rawHead('POST', UPLOAD, hdrs(ALICE, { 'Content-Length': declared.length })),
          declared,
          Buffer.alloc(400, 'Z'),
        ]),
      );
      const res = await c.response();
      c.destroy();
      t.equal(res?.status, 200, 'the declared message is complete, so it is stored');
      const id = (JSON.parse(res!.body.toString()) as { content_uri: string }).content_uri.split('/').pop()!;
      t.equal(await mediaRowCount(sdb), rows + 1, 'one row');
      const row = (
        await sdb.query<{ size_bytes: unknown; sha256_hash: string; location: string }>(
          'SELECT size_bytes, sha256_hash, location FROM media WHERE media_id = $1',
          [id],
        )
      ).rows[0]!;
      t.equal(Number(row.size_bytes), declared.length, 'row size is the declared length');
      t.equal(row.sha256_hash, createHash('sha256').update(declared).digest('hex'));
      t.ok(readFileSync(join(small.mediaDir, row.location)).equals(declared), 'blob holds the declared bytes only');
      const dl = await small.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(declared), 'download returns the declared bytes only');
    });

    t.test('3c. a full request after the declared body: never stored as media', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const c = await RawConn.open(small.port);
      const next = rawHead('GET', '/_matrix/media/version', { Host: SERVER_NAME });
      await c.write(
        Buffer.concat([rawHead('POST', UPLOAD, hdrs(ALICE, { 'Content-Length': 100 })), randomBytes(100), next]),
      );
      // uWS refuses pipelining behind an unanswered (async) request: it drops the connection,
      // which aborts the upload. (Were pipelining supported: a 200 for the declared 100 bytes.)
      t.equal(await c.response(0, 5000), null, 'connection closed without an answer');
      c.destroy();
      await assertNothingStored(t, sdb, small.mediaDir, before, 'pipelined after the body');
    });

    t.test('3d. conflicting duplicate Content-Length: 400 and close (RFC 9112 §6.3)', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const c = await RawConn.open(small.port);
      // Written by hand: a header object cannot hold the same name twice.
      await c.write(
        `POST ${UPLOAD} HTTP/1.1\r\nHost: ${SERVER_NAME}\r\nAuthorization: Bearer ${ALICE}\r\nContent-Length: 20\r\nContent-Length: 30\r\n\r\n${'A'.repeat(30)}`,
      );
      const res = await c.response();
      t.same([res?.status, errcode(res!)], [400, 'M_INVALID_PARAM']);
      t.ok(await c.waitClosed(), 'the connection is closed, so the surplus is never read as a request');
      c.destroy();
      await assertNothingStored(t, sdb, small.mediaDir, before, 'duplicate Content-Length');
    });

    t.test('4. under minBytes: 400 M_MEDIA_TOO_SMALL, nothing stored', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const res = await fetchUpload(small, Buffer.from('tiny'));
      t.equal(res.status, 400);
      t.equal(((await res.json()) as { errcode: string }).errcode, 'M_MEDIA_TOO_SMALL');
      const empty = await rawRequest(small.port, 'POST', UPLOAD, hdrs(ALICE, { 'Content-Length': 0 }));
      t.equal(empty.status, 400, 'an empty body is answered, not left hanging');
      t.equal(errcode(empty), 'M_MEDIA_TOO_SMALL');
      const under = await fetchUpload(small, randomBytes(MIN - 1));
      t.equal(under.status, 400, `${MIN - 1} bytes`);
      await under.arrayBuffer();
      await assertNothingStored(t, sdb, small.mediaDir, before, 'too small');
      t.equal((await fetchUpload(small, randomBytes(MIN))).status, 200, `exactly minBytes (${MIN})`);
    });

    t.test('5. filenames: CR/LF and quotes cannot split headers; NUL refused; names round-trip', async (t) => {
      const names = ['a"b\r\nSet-Cookie: x=1.txt', 'name with spaces', 'name;with;semicolons', '🐔', '☕', 'plain.txt'];
      for (const name of names) {
        const res = await fetchUpload(small, randomBytes(64), name);
        t.equal(res.status, 200, `upload ${JSON.stringify(name)}`);
        const id = await mediaId(res);
        for (const path of [
          `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`,
          `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}/${encodeURIComponent(name)}`,
        ]) {
          const dl = await rawRequest(small.port, 'GET', path, hdrs());
          t.equal(dl.status, 200);
          const cd = header(dl, 'content-disposition') ?? '';
          t.notOk(/[\r\n]/.test(cd), `no raw CR/LF in ${JSON.stringify(cd)}`);
          t.equal(dl.headers['set-cookie'], undefined, 'no injected Set-Cookie header');
          t.equal(
            dl.head.split('\r\n').filter((l) => /^content-disposition:/i.test(l)).length,
            1,
            'one Content-Disposition line',
          );
          t.equal(dispositionFilename(cd), name, `filename round-trips from ${JSON.stringify(cd)}`);
        }
      }
      const before = await snapshot(sdb, small.mediaDir);
      const nul = await small.fetch(`${UPLOAD}?filename=a%00b.txt`, {
        method: 'POST',
        body: new Uint8Array(randomBytes(64)),
        token: ALICE,
      });
      t.equal(nul.status, 400);
      t.equal(((await nul.json()) as { errcode: string }).errcode, 'M_INVALID_PARAM');
      await assertNothingStored(t, sdb, small.mediaDir, before, 'NUL filename');
    });

    t.test('6. path traversal in server name and media ID: refused, nothing outside read', async (t) => {
      const secret = `SENTINEL-${randomBytes(8).toString('hex')}`;
      writeFileSync(join(small.dir, 'sentinel.txt'), secret); // next to the media dir
      const stored = await mediaId(await fetchUpload(small, randomBytes(64)));
      const variants = [
        '..',
        '%2e%2e',
        '..%2f..%2fetc',
        '..%2fsentinel.txt',
        'a/b',
        'a%00b',
        'a\\b',
        '..\\sentinel.txt',
        '%5c..%5csentinel.txt',
        '%2F',
        '.',
        '%2e',
      ];
      const before = await snapshot(sdb, small.mediaDir);
      const seen: string[] = [];
      for (const v of variants) {
        for (const [server, id] of [
          [v, stored],
          [SERVER_NAME, v],
        ] as const) {
          const cases: [string, string, Record<string, string | number>, string?][] = [
            ['GET', `/_matrix/media/v3/download/${server}/${id}`, hdrs(null)],
            ['GET', `/_matrix/client/v1/media/download/${server}/${id}`, hdrs()],
            ['GET', `/_matrix/client/v1/media/download/${server}/${id}/x.txt`, hdrs()],
            ['PUT', `/_matrix/media/v3/upload/${server}/${id}`, hdrs(ALICE, { 'Content-Length': 20 }), 'x'.repeat(20)],
          ];
          for (const [method, path, h, body] of cases) {
            const res = await rawRequest(small.port, method, path, h, body);
            t.ok(isRefusal(res), `${method} ${path}: ${res.status} ${errcode(res)}`);
            if (res.body.includes(secret)) seen.push(path);
          }
        }
      }
      for (const path of [
        '/_matrix/media/v3/download/../../sentinel.txt',
        '/../sentinel.txt',
        `/_matrix/media/v3/download/${SERVER_NAME}/../../../sentinel.txt`,
      ]) {
        const res = await rawRequest(small.port, 'GET', path, hdrs());
        t.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
        if (res.body.includes(secret)) seen.push(path);
      }
      t.same(seen, [], 'the sentinel next to the datastore never appears in a response');
      await assertNothingStored(t, sdb, small.mediaDir, before, 'traversal PUTs');
    });

    t.test('7. unknown Host: 502 and a log line; Host with a port resolves', async (t) => {
      const res = await rawRequest(small.port, 'GET', '/_matrix/media/v3/config', {
        Host: 'evil.example',
        Authorization: `Bearer ${ALICE}`,
      });
      t.equal(res.status, 502);
      t.equal(errcode(res), 'M_UNKNOWN');
      // Waited for: another HTTP thread's lines reach the logger a moment after its answer.
      t.ok(
        await waitFor(() => small.logs.some((l) => l.includes('evil.example') && l.includes(SERVER_NAME))),
        'log names the host and the configured names',
      );
      const before = await snapshot(sdb, small.mediaDir);
      const up = await rawRequest(
        small.port,
        'POST',
        UPLOAD,
        { Host: 'evil.example', Authorization: `Bearer ${ALICE}`, 'Content-Length': 64 },
        randomBytes(64),
      );
      t.equal(up.status, 502, 'upload for an unknown host');
      await assertNothingStored(t, sdb, small.mediaDir, before, 'unknown host upload');
      const ported = await rawRequest(
        small.port,
        'GET',
        '/_matrix/media/v3/config',
        hdrs(ALICE, { Host: `${SERVER_NAME}:8448` }),
      );
      t.equal(ported.status, 200);
      t.same(JSON.parse(ported.body.toString()), { 'm.upload.size': MAX }, 'media.test:8448 is media.test');
    });

    t.test('8. tokens: missing → M_MISSING_TOKEN, invalid → M_UNKNOWN_TOKEN, auth before params', async (t) => {
      const before = await snapshot(sdb, small.mediaDir);
      const endpoints: [string, string, string?][] = [
        ['POST', UPLOAD, 'x'.repeat(64)],
        ['POST', '/_matrix/media/v1/create'],
        ['GET', '/_matrix/media/v3/config'],
        ['GET', '/_matrix/client/v1/media/config'],
        ['GET', `/_matrix/client/v1/media/download/${SERVER_NAME}/abcdef`],
        ['GET', `/_matrix/client/v1/media/download/${SERVER_NAME}/bad%00id`],
        ['GET', '/_matrix/client/v1/media/download/..%2f..%2fetc/passwd'],
        ['PUT', `/_matrix/media/v3/upload/${SERVER_NAME}/bad%00id`, 'x'.repeat(64)],
      ];
      for (const [method, path, body] of endpoints) {
        const extra: Record<string, number> = body ? { 'Content-Length': body.length } : {};
        const none = await rawRequest(small.port, method, path, hdrs(null, extra), body);
        t.same([none.status, errcode(none)], [401, 'M_MISSING_TOKEN'], `${method} ${path} without a token`);
        const bad = await rawRequest(small.port, method, path, hdrs('not-a-token', extra), body);
        t.same([bad.status, errcode(bad)], [401, 'M_UNKNOWN_TOKEN'], `${method} ${path} with an invalid token`);
      }
      await assertNothingStored(t, sdb, small.mediaDir, before, 'unauthenticated uploads');
    });

    t.test('9. malformed Range is ignored; a range past the end is 416', async (t) => {
      for (const [r, size] of [
        [small, 100],
        [big, 100_000],
      ] as const) {
        const body = randomBytes(size);
        const id = await mediaId(await fetchUpload(r, body));
        const path = `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
        for (const range of ['bytes=abc', 'bytes=5-2', 'items=0-1', 'bytes=0-1,4-5', 'bytes=', 'bytes=--1']) {
          const res = await rawRequest(r.port, 'GET', path, hdrs(ALICE, { Range: range }));
          t.equal(res.status, 200, `${range} on ${size} bytes`);
          t.ok(res.body.equals(body), `${range}: full body`);
          t.equal(header(res, 'content-range'), undefined);
        }
        const past = await rawRequest(r.port, 'GET', path, hdrs(ALICE, { Range: 'bytes=999999-' }));
        t.equal(past.status, 416);
        t.equal(header(past, 'content-range'), `bytes */${size}`);
      }
    });

    t.test('10. abort mid-upload: staging removed, nothing stored, server keeps serving', async (t) => {
      const bdb = big.repo.services.db;
      const before = await snapshot(bdb, big.mediaDir);
      const c = await RawConn.open(big.port);
      await c.head('POST', UPLOAD, hdrs(ALICE, { 'Content-Length': 5 * 1024 * 1024 }));
      for (let i = 0; i < 16; i++) await c.write(randomBytes(64 * 1024));
      t.ok(await waitFor(() => stagingFiles(big.mediaDir).length > 0), 'the upload reached a staging file');
      const logged = big.logs.length;
      c.destroy();
      await assertNothingStored(t, bdb, big.mediaDir, before, 'aborted upload');
      t.same(
        big.logs.slice(logged).filter((l) => / ERROR /.test(l)),
        [],
        'a client hanging up is not logged as a server error',
      );
      const body = randomBytes(1000);
      const res = await fetchUpload(big, body);
      t.equal(res.status, 200, 'a following upload works');
      const dl = await big.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${await mediaId(res)}`, {
        token: ALICE,
      });
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(body));
    });

    t.test('11. a 100 MB multipart POST to a download URL: 405 without buffering', async (t) => {
      const total = 100 * 1024 * 1024;
      const block = randomBytes(64 * 1024);
      for (const path of [
        `/_matrix/media/v3/download/${SERVER_NAME}/abcdef`,
        `/_matrix/client/v1/media/download/${SERVER_NAME}/abcdef`,
      ]) {
        const rss = process.memoryUsage().rss;
        const c = await RawConn.open(big.port);
        await c.head(
          'POST',
          path,
          hdrs(ALICE, { 'Content-Length': total, 'Content-Type': 'multipart/form-data; boundary=xyz' }),
        );
        let sent = 0;
        for (; sent < 1024 * 1024; sent += block.length) await c.write(block);
        const res = await c.response(0, 5000); // after 1 of 100 MB: the body was not waited for
        t.equal(res?.status, 405, path);
        t.equal(errcode(res!), 'M_UNRECOGNIZED');
        for (; sent < total && !c.closed; sent += block.length) await c.write(block);
        c.destroy();
        const grown = process.memoryUsage().rss - rss;
        t.ok(
          grown < 50 * 1024 * 1024,
          `rss grew ${(grown / 1048576).toFixed(1)} MB after ${(sent / 1048576).toFixed(0)} MB sent`,
        );
      }
      const ok = await big.fetch('/_matrix/media/v3/config', { token: ALICE });
      t.equal(ok.status, 200, 'the server keeps serving');
    });

    t.test('12. unknown paths 404, wrong methods 405, OPTIONS runs no endpoint logic', async (t) => {
      for (const p of [
        '/_matrix/media/v3/nope',
        '/_matrix/media/v3/download',
        '/_matrix/client/v1/media/nope',
        '/_matrix/federation/v1/media/nope',
        '/_matrix/federation/v1/media/download/abc/def',
      ]) {
        const res = await rawRequest(small.port, 'GET', p, hdrs());
        t.same([res.status, errcode(res)], [404, 'M_UNRECOGNIZED'], p);
      }
      // A federation endpoint that exists: another server's signature comes first.
      const fed = await rawRequest(small.port, 'GET', '/_matrix/federation/v1/media/download/abc', hdrs());
      t.same([fed.status, errcode(fed)], [401, 'M_UNAUTHORIZED'], 'unsigned federation download');
      for (const [m, p] of [
        ['GET', UPLOAD],
        ['DELETE', UPLOAD],
        ['POST', '/_matrix/media/v3/config'],
        ['PUT', `/_matrix/client/v1/media/download/${SERVER_NAME}/abc`],
      ]) {
        const res = await rawRequest(
          small.port,
          m!,
          p!,
          hdrs(ALICE, m === 'GET' || m === 'DELETE' ? {} : { 'Content-Length': 0 }),
        );
        t.same([res.status, errcode(res)], [405, 'M_UNRECOGNIZED'], `${m} ${p}`);
      }
      const before = await snapshot(sdb, small.mediaDir);
      const preflights = [
        [UPLOAD, hdrs(null)],
        ['/_matrix/media/v3/nope', hdrs(null)],
        [`/_matrix/client/v1/media/download/${SERVER_NAME}/bad%00id`, hdrs(null)],
        [UPLOAD, { Host: 'evil.example' }],
        [UPLOAD, hdrs(ALICE, { 'Content-Length': 64 })],
      ] as const;
      for (const [p, h] of preflights) {
        const body = 'Content-Length' in h ? 'x'.repeat(64) : undefined; // a body on OPTIONS is not an upload
        const res = await rawRequest(
          small.port,
          'OPTIONS',
          p,
          { ...h, Origin: 'https://client.example', 'Access-Control-Request-Method': 'POST' },
          body,
        );
        t.equal(res.status, 200, `OPTIONS ${p} (${h.Host})`);
        t.equal(header(res, 'access-control-allow-origin'), '*');
        t.match(header(res, 'access-control-allow-methods') ?? '', /POST/);
        t.match(header(res, 'access-control-allow-headers') ?? '', /Authorization/);
      }
      await assertNothingStored(t, sdb, small.mediaDir, before, 'OPTIONS');
    });
  });
}
