import t from 'tap';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { ALICE } from './helpers/repo.js';
import { startFederatingServer, type FederatingServer } from './helpers/federation.js';
import { startTestS3 } from './helpers/s3.js';
import { signRequest } from '../src/matrix/x-matrix.js';
import { generateSigningKey } from '../src/matrix/signing-keys.js';
import { multipartBoundary, parseMultipart } from '../src/matrix/multipart.js';
import { RawConn, header } from './helpers/hostile-http.js';

// Two media-repo instances federating on loopback, each behind a front server that publishes
// its signing key: media uploaded on A is fetched, stored and thumbnailed through B.

/** A raw GET with our own Authorization (fetch() cannot send a chosen Host). */
function signedGet(
  to: FederatingServer,
  path: string,
  auth: string | null,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const [host, port] = to.name.split(':');
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port: Number(port), path, headers: { Host: to.name, ...(auth ? { Authorization: auth } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

t.test('federation between two media repositories', async (t) => {
  const a = await startFederatingServer('pglite');
  const b = await startFederatingServer('pglite', {
    repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'debug', freezeUnauthenticatedMedia: false },
  });
  t.teardown(async () => {
    await b.close();
    await a.close();
  });
  const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#3a6ea5' } })
    .png()
    .toBuffer();
  const name = 'holiday; photo 🏖.png';
  const up = await a.repo.fetch(`/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
    method: 'POST',
    body: new Uint8Array(png),
    headers: { 'Content-Type': 'img/png' },
    token: ALICE,
  });
  t.equal(up.status, 200);
  const mediaId = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;

  t.test('the federation endpoint needs a valid X-Matrix signature addressed to us', async (t) => {
    const path = `/_matrix/federation/v1/media/download/${mediaId}`;
    const none = await signedGet(a, path, null);
    t.equal(none.status, 401);
    t.equal(JSON.parse(none.body.toString()).errcode, 'M_UNAUTHORIZED');
    const wrongDest = await signedGet(
      a,
      path,
      signRequest({ method: 'GET', uri: path, origin: b.name, destination: 'elsewhere.example' }, b.key),
    );
    t.equal(wrongDest.status, 401);
    const forged = await signedGet(
      a,
      path,
      signRequest(
        { method: 'GET', uri: path, origin: b.name, destination: a.name },
        { ...generateSigningKey(), keyId: b.key.keyId },
      ),
    );
    t.equal(forged.status, 401, "signed with another key under B's key ID");
    const ok = await signedGet(
      a,
      path,
      signRequest({ method: 'GET', uri: path, origin: b.name, destination: a.name }, b.key),
    );
    t.equal(ok.status, 200);
    const boundary = multipartBoundary(ok.headers['content-type'] as string);
    t.ok(boundary, 'multipart/mixed with a boundary');
    const { Readable } = await import('node:stream');
    const parsed = await parseMultipart(Readable.from([ok.body]), boundary!);
    t.same(parsed.json, {});
    t.equal(parsed.part.kind, 'file');
    if (parsed.part.kind !== 'file') return;
    t.equal(parsed.part.contentType, 'img/png');
    const chunks: Buffer[] = [];
    for await (const c of parsed.part.body) chunks.push(c as Buffer);
    t.ok(Buffer.concat(chunks).equals(png), 'the file part holds the bytes');
  });

  t.test('one kept-alive connection carries several federation answers (multipart, thumbnail, error)', async (t) => {
    // As a peer's connection pool reuses its connection to us (issue 13 item 1).
    const c = await RawConn.open(a.repo.port);
    t.teardown(() => c.destroy());
    const sign = (uri: string) => ({
      Host: a.name,
      Authorization: signRequest({ method: 'GET', uri, origin: b.name, destination: a.name }, b.key),
    });
    const download = `/_matrix/federation/v1/media/download/${mediaId}`;
    const thumb = `/_matrix/federation/v1/media/thumbnail/${mediaId}?width=32&height=32&method=scale`;
    const missing = '/_matrix/federation/v1/media/download/nosuchmedia';
    const plan: [string, number][] = [
      [download, 200],
      [thumb, 200],
      [missing, 404],
      [download, 200],
      [download, 200],
    ];
    for (const [i, [uri, status]] of plan.entries()) {
      await c.head('GET', uri, sign(uri));
      const res = await c.response(i);
      t.equal(res?.status, status, `request ${i + 1} on the connection: ${uri.split('?')[0]} → ${status}`);
      if (status === 200) t.match(header(res!, 'content-type'), /^multipart\/mixed; boundary=/);
    }
    t.notOk(c.closed, 'the connection is still open');
  });

  t.test("B fetches A's media over federation, keeps type and name, then serves it from storage", async (t) => {
    const path = `/_matrix/client/v1/media/download/${a.name}/${mediaId}`;
    const first = await b.repo.fetch(path, { token: ALICE });
    t.equal(first.status, 200);
    t.equal(first.headers.get('content-type'), 'img/png', 'Content-Type as uploaded');
    t.match(first.headers.get('content-disposition'), /filename\*=utf-8''holiday%3B%20photo%20%F0%9F%8F%96\.png/);
    t.ok(Buffer.from(await first.arrayBuffer()).equals(png));
    // The client had every byte before the row was written (stream-through): wait for it.
    let rows = 0;
    for (let i = 0; i < 100 && rows === 0; i++) {
      rows = (
        await b.repo.repo.services.db.query('SELECT 1 FROM media WHERE origin = $1 AND media_id = $2', [
          a.name,
          mediaId,
        ])
      ).rows.length;
      if (rows === 0) await new Promise((r) => setTimeout(r, 20));
    }
    t.equal(rows, 1, 'stored on B');
    const second = await b.repo.fetch(path, { token: ALICE });
    t.equal(second.status, 200);
    t.ok(Buffer.from(await second.arrayBuffer()).equals(png));
    t.ok(second.headers.get('etag'), 'served from storage (ETag, ranges)');
    const legacy = await b.repo.fetch(`/_matrix/media/v3/download/${a.name}/${mediaId}`);
    t.equal(legacy.status, 200, 'cached before any freeze on B: legacy path too');
  });

  t.test('thumbnails of remote media', async (t) => {
    const res = await b.repo.fetch(
      `/_matrix/client/v1/media/thumbnail/${a.name}/${mediaId}?width=96&height=96&method=crop`,
      { token: ALICE },
    );
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'image/png');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    t.same([meta.width, meta.height], [96, 96]);
  });

  t.test('federation thumbnails are the bytes the client endpoint serves', async (t) => {
    const q = 'width=32&height=32&method=scale';
    const path = `/_matrix/federation/v1/media/thumbnail/${mediaId}?${q}`;
    const fed = await signedGet(
      a,
      path,
      signRequest({ method: 'GET', uri: path, origin: b.name, destination: a.name }, b.key),
    );
    t.equal(fed.status, 200);
    const { Readable } = await import('node:stream');
    const parsed = await parseMultipart(
      Readable.from([fed.body]),
      multipartBoundary(fed.headers['content-type'] as string)!,
    );
    if (parsed.part.kind !== 'file') return t.fail('no file part');
    const chunks: Buffer[] = [];
    for await (const c of parsed.part.body) chunks.push(c as Buffer);
    const client = await a.repo.fetch(`/_matrix/client/v1/media/thumbnail/${a.name}/${mediaId}?${q}`, { token: ALICE });
    t.ok(Buffer.from(await client.arrayBuffer()).equals(Buffer.concat(chunks)));
    t.equal(parsed.part.contentType, 'image/png');
  });

  t.test('unknown remote media is 404, and allow_remote=false does not fetch', async (t) => {
    const missing = await b.repo.fetch(`/_matrix/client/v1/media/download/${a.name}/AAAAAAAAAAAAAAAAAAAAAAAA`, {
      token: ALICE,
    });
    t.equal(missing.status, 404);
    const noRemote = await b.repo.fetch(`/_matrix/media/v3/download/${a.name}/${mediaId}x?allow_remote=false`);
    t.equal(noRemote.status, 404);
  });

  t.test('an S3 datastore with publicBaseUrl answers federation with a Location part', async (t) => {
    const s3 = await startTestS3();
    const c = await startFederatingServer('pglite', {
      datastores: [
        { id: 's3', type: 's3', forKinds: ['all'], opts: s3.opts({ publicBaseUrl: 'https://cdn.example/media' }) },
      ],
    });
    t.teardown(async () => {
      await c.close();
      await s3.close();
    });
    const up = await c.repo.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      body: new Uint8Array(png),
      headers: { 'Content-Type': 'image/png' },
      token: ALICE,
    });
    const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const path = `/_matrix/federation/v1/media/download/${id}`;
    const res = await signedGet(
      c,
      path,
      signRequest({ method: 'GET', uri: path, origin: b.name, destination: c.name }, b.key),
    );
    t.equal(res.status, 200);
    const { Readable } = await import('node:stream');
    const parsed = await parseMultipart(
      Readable.from([res.body]),
      multipartBoundary(res.headers['content-type'] as string)!,
    );
    t.same(parsed.json, {});
    t.equal(parsed.part.kind, 'location', 'a Location part instead of the bytes');
    if (parsed.part.kind === 'location') {
      t.equal(parsed.part.location, `https://cdn.example/media/${createHash('sha256').update(png).digest('hex')}`);
    }
  });
});
