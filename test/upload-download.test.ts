import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { drivers } from './helpers/databases.js';
import { ALICE, BOB, GUEST, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';

function blobFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.staging') continue;
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

async function upload(
  r: TestRepo,
  body: Buffer,
  opts: { token?: string; type?: string; name?: string; path?: string } = {},
) {
  const q = opts.name === undefined ? '' : `?filename=${encodeURIComponent(opts.name)}`;
  const headers: Record<string, string> = {};
  if (opts.type) headers['Content-Type'] = opts.type;
  return r.fetch(`${opts.path ?? '/_matrix/media/v3/upload'}${q}`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers,
    token: opts.token ?? ALICE,
  });
}

for (const d of drivers()) {
  t.test(`upload and download (${d.name})`, { skip: d.skip }, async (t) => {
    const r = await startTestRepo(d.name);
    t.teardown(() => r.close());

    t.test('upload returns an mxc and download returns the same bytes, type and name', async (t) => {
      const body = randomBytes(300_000);
      const res = await upload(r, body, { type: 'img/png', name: 'holiday photo.png' });
      t.equal(res.status, 200);
      const { content_uri } = (await res.json()) as { content_uri: string };
      t.match(content_uri, new RegExp(`^mxc://${SERVER_NAME}/[A-Za-z0-9_-]{24}$`));
      const id = content_uri.split('/').pop()!;
      const dl = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
      t.equal(dl.status, 200);
      t.equal(dl.headers.get('content-type'), 'img/png', 'content type echoed exactly, even non-standard');
      t.equal(dl.headers.get('content-disposition'), "attachment; filename*=utf-8''holiday%20photo.png");
      t.equal(dl.headers.get('etag'), `"${createHash('sha256').update(body).digest('hex')}"`);
      t.equal(dl.headers.get('cross-origin-resource-policy'), 'cross-origin');
      t.equal(dl.headers.get('x-content-type-options'), 'nosniff');
      t.match(dl.headers.get('content-security-policy') ?? '', /sandbox/);
      t.equal(dl.headers.get('access-control-allow-origin'), '*');
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(body), 'bytes round-trip');

      const named = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}/other.png`, { token: GUEST });
      t.equal(named.status, 200, 'guests may download (MSC4189)');
      t.equal(named.headers.get('content-disposition'), 'attachment; filename=other.png', 'path filename overrides');
      await named.arrayBuffer();
    });

    t.test('small files, inline types, default content type, HEAD', async (t) => {
      const res = await upload(r, Buffer.from('hello world, this is text'), { type: 'Text/Plain; charset=utf-8' });
      const id = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const dl = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
      t.equal(dl.headers.get('content-disposition'), 'inline', 'safe type is inline, no filename when none given');
      t.equal(await dl.text(), 'hello world, this is text');
      const head = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, {
        method: 'HEAD',
        token: ALICE,
      });
      t.equal(head.status, 200);
      t.equal(head.headers.get('content-length'), '25');
      t.equal((await head.arrayBuffer()).byteLength, 0);

      const res2 = await upload(
        r,
        Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
      );
      const id2 = ((await res2.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const dl2 = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id2}`, { token: ALICE });
      t.equal(dl2.headers.get('content-type'), 'application/octet-stream');
      t.equal(dl2.headers.get('content-disposition'), 'attachment');
      await dl2.arrayBuffer();
    });

    t.test('Range, If-None-Match and freeze', async (t) => {
      const body = randomBytes(100_000);
      const res = await upload(r, body, { type: 'video/mp4' });
      const id = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const path = `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
      const part = await r.fetch(path, { token: ALICE, headers: { Range: 'bytes=10-19' } });
      t.equal(part.status, 206);
      t.equal(part.headers.get('content-range'), 'bytes 10-19/100000');
      t.ok(Buffer.from(await part.arrayBuffer()).equals(body.subarray(10, 20)));
      const suffix = await r.fetch(path, { token: ALICE, headers: { Range: 'bytes=-5' } });
      t.ok(Buffer.from(await suffix.arrayBuffer()).equals(body.subarray(99_995)));
      const bad = await r.fetch(path, { token: ALICE, headers: { Range: 'bytes=200000-' } });
      t.equal(bad.status, 416);
      t.equal(bad.headers.get('content-range'), 'bytes */100000');
      await bad.arrayBuffer();
      const etag = part.headers.get('etag')!;
      const cond = await r.fetch(path, { token: ALICE, headers: { 'If-None-Match': etag } });
      t.equal(cond.status, 304);
      const legacy = await r.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/${id}`);
      t.equal(legacy.status, 404, 'frozen media is not served on legacy endpoints');
      t.same(await legacy.json(), { errcode: 'M_NOT_FOUND', error: 'Media not found' });
    });

    t.test('the stream path (stores without random access, like S3) serves the same bytes', async (t) => {
      const body = randomBytes(3 * 1024 * 1024 + 17);
      const res = await upload(r, body, { type: 'video/webm' });
      const id = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const ds = r.repo.services.datastores.get('files')! as { readAt?: unknown };
      const readAt = ds.readAt;
      ds.readAt = undefined; // a datastore that can only stream
      t.teardown(() => {
        ds.readAt = readAt;
      });
      const path = `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
      const full = await r.fetch(path, { token: ALICE });
      t.ok(Buffer.from(await full.arrayBuffer()).equals(body), 'whole body via the stream path');
      const part = await r.fetch(path, { token: ALICE, headers: { Range: 'bytes=1048570-2097160' } });
      t.equal(part.status, 206);
      t.ok(Buffer.from(await part.arrayBuffer()).equals(body.subarray(1048570, 2097161)), 'range via the stream path');
    });

    t.test('dedup: same bytes share one blob; same user+name+type gets the same mxc', async (t) => {
      const before = blobFiles(r.mediaDir).length;
      const body = randomBytes(5000);
      const a1 = (await (await upload(r, body, { name: 'a.bin', type: 'application/x-test' })).json()) as {
        content_uri: string;
      };
      const a2 = (await (await upload(r, body, { name: 'a.bin', type: 'application/x-test' })).json()) as {
        content_uri: string;
      };
      const a3 = (await (await upload(r, body, { name: 'b.bin', type: 'application/x-test' })).json()) as {
        content_uri: string;
      };
      const b1 = (await (await upload(r, body, { token: BOB, name: 'a.bin', type: 'application/x-test' })).json()) as {
        content_uri: string;
      };
      t.equal(a1.content_uri, a2.content_uri, 'perfect match returns the existing mxc');
      t.not(a1.content_uri, a3.content_uri, 'different filename gets a new mxc');
      t.not(a1.content_uri, b1.content_uri, 'different user gets a new mxc');
      t.equal(blobFiles(r.mediaDir).length, before + 1, 'only one blob was stored');
    });

    t.test('100 concurrent identical uploads store one blob', async (t) => {
      const before = blobFiles(r.mediaDir).length;
      const body = randomBytes(20_000);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          upload(r, body, { name: `f${i % 7}.bin`, token: i % 2 ? ALICE : BOB }).then((x) => x.status),
        ),
      );
      t.same(new Set(results), new Set([200]));
      t.equal(blobFiles(r.mediaDir).length, before + 1);
    });

    t.test('/config reports m.upload.size', async (t) => {
      for (const p of ['/_matrix/media/v3/config', '/_matrix/media/r0/config', '/_matrix/client/v1/media/config']) {
        const res = await r.fetch(p, { token: ALICE });
        t.same(await res.json(), { 'm.upload.size': 104857600 }, p);
      }
      const guest = await r.fetch('/_matrix/client/v1/media/config', { token: GUEST });
      t.equal(guest.status, 403);
      t.equal(((await guest.json()) as { errcode: string }).errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    });
  });
}
