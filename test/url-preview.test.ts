import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ALICE, BOB, GUEST, startTestRepo } from './helpers/repo.js';

// URL previews against a fixture site on loopback (allowed in this test's config): OpenGraph
// pages, fallbacks, charsets, oversized and endless pages, hostile nesting, oEmbed (provider
// list and discovery), a direct image, caching and singleflight, auth and parameter errors.

const IMG = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } })
  .png()
  .toBuffer();
const BIG_IMG = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 10, g: 90, b: 200 } } })
  .jpeg()
  .toBuffer();

const hits = new Map<string, number>();
let endlessClosed = false;
const page = (head: string, body = '') => `<!doctype html><html><head>${head}</head><body>${body}</body></html>`;

function site(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
  const html = (body: string | Buffer, type = 'text/html; charset=utf-8'): void =>
    void res.writeHead(200, { 'Content-Type': type }).end(body);
  switch (url.pathname) {
    case '/og.html':
      return void html(
        page(`<meta property="og:title" content="The &amp; Title"><meta property="og:type" content="article">
        <meta property="og:url" content="https://example.org/canonical"><meta property="og:description" content="A described page">
        <meta property="og:site_name" content="Fixture Site"><meta property="og:image" content="/img/cat.png">`),
      );
    case '/plain.html':
      return void html(
        page(
          '<title>Plain page title</title><meta name="description" content="Meta description here">',
          '<nav>Menu items</nav><h1>Heading</h1><p>Body text.</p><img src="/img/big.jpg" width="300" height="200"><img src="/px.gif" width="1" height="1">',
        ),
      );
    case '/bodytext.html':
      return void html(
        page(
          '',
          '<header>Site header</header><h2>Second level</h2><p>Visible words only.</p><script>var hidden = 1;</script><footer>Footer</footer>',
        ),
      );
    case '/latin1.html':
      return void html(
        Buffer.from(page('<title>Caf\u00e9 M\u00fcller</title>'), 'latin1'),
        'text/html; charset=ISO-8859-1',
      );
    case '/sjis.html': {
      // <title>日本語</title> in Shift_JIS, declared only by <meta charset>.
      const title = Buffer.from([0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea]);
      return void html(
        Buffer.concat([
          Buffer.from('<html><head><meta charset="Shift_JIS"><title>'),
          title,
          Buffer.from('</title></head><body></body></html>'),
        ]),
        'text/html',
      );
    }
    case '/big.html':
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.write(page('<meta property="og:title" content="Big page">'));
      return void res.end(Buffer.alloc(4 * 1024 * 1024, 'a'));
    case '/endless': {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.write('<html><head><title>Radio stream</title></head><body>');
      const timer = setInterval(() => res.write('<p>more</p>'), 20);
      res.on('close', () => {
        clearInterval(timer);
        endlessClosed = true;
      });
      return;
    }
    case '/deep.html':
      return void html(`<title>Deep</title>${'<div>'.repeat(100_000)}deep text${'</div>'.repeat(100_000)}`);
    case '/img/cat.png':
      return void res.writeHead(200, { 'Content-Type': 'image/png' }).end(IMG);
    case '/img/big.jpg':
      return void res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(BIG_IMG);
    case '/files/photo.jpg':
      return void res
        .writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Disposition': 'inline; filename="holiday photo.jpg"' })
        .end(BIG_IMG);
    case '/audio.mp3':
      return void res.writeHead(200, { 'Content-Type': 'audio/mpeg' }).end(Buffer.alloc(1000));
    case '/video/42':
      return void html(page('<title>Video page</title>'));
    case '/oembed': {
      const target = url.searchParams.get('url') ?? '';
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          version: '1.0',
          type: 'video',
          title: target.includes('disc') ? 'Discovered title' : 'A fixture video',
          provider_name: 'Fixture Tube',
          author_name: 'Someone',
          thumbnail_url: `http://127.0.0.1:${port}/img/big.jpg`,
          html: '<iframe src="x"></iframe><p>Rich words</p>',
        }),
      );
    }
    case '/discover.html':
      return void html(
        page(`<title>Page title</title><link rel="alternate" type="application/json+oembed" href="/oembed?url=disc">`),
      );
    case '/gone':
      return void res.writeHead(404, { 'Content-Type': 'text/html' }).end('gone');
    case '/slow':
      return void setTimeout(() => html(page('<title>Slow once</title>')), 300);
    default:
      return void res.writeHead(404).end();
  }
}

const server = createServer(site);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;
const base = `http://127.0.0.1:${port}`;
const providersDir = mkdtempSync(join(tmpdir(), 'oembed-'));
const providersFile = join(providersDir, 'providers.json');
writeFileSync(
  providersFile,
  JSON.stringify([
    { provider_name: 'Fixture Tube', endpoints: [{ schemes: [`${base}/video/*`], url: `${base}/oembed` }] },
  ]),
);

const repo = await startTestRepo('pglite', {
  urlPreviews: {
    allowedNetworks: ['127.0.0.1/32'],
    maxPageSizeBytes: 256 * 1024,
    oEmbed: true,
    oEmbedProvidersFile: providersFile,
    numWords: 8,
    maxLength: 60,
    numTitleWords: 30,
    maxTitleLength: 150,
  },
  timeouts: { urlPreviewTimeoutSeconds: 2 },
});
t.teardown(async () => {
  await repo.close();
  server.closeAllConnections();
  server.close();
});

type Preview = Record<string, string | number>;
const preview = async (target: string, opts: { token?: string | null; ts?: number; path?: string } = {}) => {
  const q = new URLSearchParams({ url: target });
  if (opts.ts !== undefined) q.set('ts', String(opts.ts));
  const res = await repo.fetch(`${opts.path ?? '/_matrix/client/v1/media/preview_url'}?${q}`, {
    token: opts.token === undefined ? ALICE : opts.token,
  });
  return { status: res.status, body: (await res.json()) as Preview };
};
const download = async (mxc: string) => {
  const res = await repo.fetch(`/_matrix/client/v1/media/download/${mxc.slice('mxc://'.length)}`, { token: ALICE });
  return Buffer.from(await res.arrayBuffer());
};

t.test('OpenGraph page with a relative og:image', async (t) => {
  const { status, body } = await preview(`${base}/og.html`);
  t.equal(status, 200);
  t.equal(body['og:title'], 'The & Title');
  t.equal(body['og:type'], 'article');
  t.equal(body['og:url'], 'https://example.org/canonical');
  t.equal(body['og:description'], 'A described page');
  t.equal(body['og:site_name'], 'Fixture Site');
  t.match(body['og:image'], /^mxc:\/\/media\.test\/[A-Za-z0-9_-]+$/);
  t.equal(body['og:image:type'], 'image/png');
  t.equal(body['og:image:width'], 64);
  t.equal(body['og:image:height'], 48);
  t.equal(body['matrix:image:size'], IMG.length);
  t.equal(body['matrix:image:blurhash'], undefined, 'MSC2448 off (the default): no BlurHash');
  t.ok((await download(body['og:image'] as string)).equals(IMG), 'the stored image is the fetched bytes');
  t.equal(hits.get('/img/cat.png'), 1);
});

t.test('legacy paths answer the same, from the cache', async (t) => {
  for (const path of ['/_matrix/media/v3/preview_url', '/_matrix/media/r0/preview_url']) {
    const { status, body } = await preview(`${base}/og.html`, { path });
    t.equal(status, 200);
    t.equal(body['og:title'], 'The & Title');
  }
  t.equal(hits.get('/og.html'), 1, 'fetched once for all three');
});

t.test('fallbacks without og tags: <title>, meta description, a sensibly sized <img>', async (t) => {
  const { body } = await preview(`${base}/plain.html`);
  t.equal(body['og:title'], 'Plain page title');
  t.equal(body['og:description'], 'Meta description here');
  t.equal(body['og:image:width'], 300);
  t.equal(body['og:image:type'], 'image/jpeg');
  t.notOk(hits.get('/px.gif'), 'the tracking pixel was not fetched');
  const text = await preview(`${base}/bodytext.html`);
  t.equal(text.body['og:title'], 'Second level', 'heading as title');
  t.equal(text.body['og:description'], 'Second level Visible words only.');
});

t.test('charsets: ISO-8859-1 from the header, Shift_JIS from <meta charset>', async (t) => {
  t.equal((await preview(`${base}/latin1.html`)).body['og:title'], 'Caf\u00e9 M\u00fcller');
  t.equal((await preview(`${base}/sjis.html`)).body['og:title'], '\u65e5\u672c\u8a9e');
});

t.test('an oversized page previews from its first maxPageSizeBytes', async (t) => {
  const { status, body } = await preview(`${base}/big.html`);
  t.equal(status, 200);
  t.equal(body['og:title'], 'Big page');
});

t.test('an endless page ends at the deadline with what arrived', async (t) => {
  const { status, body } = await preview(`${base}/endless`);
  t.equal(status, 200);
  t.equal(body['og:title'], 'Radio stream');
  await new Promise((r) => setTimeout(r, 100));
  t.ok(endlessClosed, 'the connection to the stream was closed');
});

t.test('100k-deep nesting parses', async (t) => {
  const { status, body } = await preview(`${base}/deep.html`);
  t.equal(status, 200);
  t.equal(body['og:title'], 'Deep');
});

t.test('oEmbed from the provider list, and discovered from a page', async (t) => {
  const { body } = await preview(`${base}/video/42`);
  t.equal(body['og:title'], 'A fixture video');
  t.equal(body['og:site_name'], 'Fixture Tube');
  t.equal(body['og:image:width'], 300);
  t.notOk(hits.get('/video/42'), 'the page itself was not needed');
  const disc = await preview(`${base}/discover.html`);
  t.equal(disc.body['og:title'], 'Discovered title');
  t.match(disc.body['og:image'], /^mxc:\/\//);
});

t.test('a direct image URL is its own preview', async (t) => {
  const { status, body } = await preview(`${base}/files/photo.jpg`);
  t.equal(status, 200);
  t.equal(body['og:title'], 'holiday photo.jpg');
  t.equal(body['og:image:type'], 'image/jpeg');
  t.equal(body['og:image:width'], 300);
  t.equal(body['og:image:height'], 200);
  t.equal(body['matrix:image:size'], BIG_IMG.length);
});

t.test('types outside filePreviewTypes and missing pages: 404, cached', async (t) => {
  const audio = await preview(`${base}/audio.mp3`);
  t.equal(audio.status, 404);
  t.equal(audio.body.errcode, 'M_NOT_FOUND');
  for (let i = 0; i < 2; i++) {
    const gone = await preview(`${base}/gone`);
    t.equal(gone.status, 404);
  }
  t.equal(hits.get('/gone'), 1, 'the failure was cached');
});

t.test('concurrent requests make one fetch; another hour bucket fetches again', async (t) => {
  const all = await Promise.all(Array.from({ length: 10 }, () => preview(`${base}/slow`)));
  for (const r of all) t.equal(r.body['og:title'], 'Slow once');
  t.equal(hits.get('/slow'), 1);
  const dayAgo = Date.now() - 24 * 3600_000;
  await preview(`${base}/slow`, { ts: dayAgo });
  t.equal(hits.get('/slow'), 2, 'a different bucket');
  await preview(`${base}/slow`, { ts: dayAgo + 1 });
  t.equal(hits.get('/slow'), 2, 'same bucket again: cached');
});

t.test('auth and parameters', async (t) => {
  const anon = await preview(`${base}/og.html`, { token: null });
  t.equal(anon.status, 401);
  t.equal(anon.body.errcode, 'M_MISSING_TOKEN');
  const guest = await preview(`${base}/og.html`, { token: GUEST });
  t.equal(guest.status, 403);
  t.equal(guest.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
  t.equal((await preview(`${base}/og.html`, { token: BOB })).status, 200, 'another user');
  const missing = await repo.fetch('/_matrix/client/v1/media/preview_url', { token: ALICE });
  t.equal(missing.status, 400);
  t.equal(((await missing.json()) as Preview).errcode, 'M_MISSING_PARAM');
  for (const bad of ['ftp://example.org/', 'javascript:alert(1)', 'not a url', 'http://user:pw@127.0.0.1/']) {
    const r = await preview(bad);
    t.equal(r.status, 400, bad);
    t.equal(r.body.errcode, 'M_INVALID_PARAM', bad);
  }
  const badTs = await repo.fetch(`/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(base)}&ts=yesterday`, {
    token: ALICE,
  });
  t.equal(badTs.status, 400);
});
