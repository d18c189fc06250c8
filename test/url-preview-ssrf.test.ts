import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import dns from 'node:dns';
import { ALICE, startTestRepo, ONE_THREAD } from './helpers/repo.js';

// URL previews must never reach a denied address: not by literal (in any spelling), not by a
// name that resolves there, not through a redirect, an og:image or an oEmbed link, and not to
// probe ports. Every case asserts the answer and that the target saw no request at all.

const seen: string[] = [];
function recorder(label: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${label} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<title>secret internal page</title>');
  };
}
async function listen(
  host: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen({ host, port: 0, ipv6Only: false }, r));
  return { server, port: (server.address() as AddressInfo).port };
}

// The "internal" service: listens on every loopback form (:: takes IPv4 too).
const internal = await listen('::', recorder('internal'));
const P = internal.port;
// A name resolving to loopback, and one resolving to a public and a loopback address: a DNS
// fixture (the OS resolver cannot be told new names here).
const realLookup = dns.promises.lookup;
(dns.promises as { lookup: unknown }).lookup = async (host: string, opts: unknown) => {
  if (host === 'internal.preview.test') return [{ address: '127.0.0.1', family: 4 }];
  if (host === 'mixed.preview.test')
    return [
      { address: '93.184.215.14', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
  return (realLookup as (h: string, o: unknown) => Promise<unknown>)(host, opts);
};

t.test('with the default lists', async (t) => {
  // One thread: the names above resolve through this thread's patched lookup, which other HTTP
  // threads (their own module instances) do not see.
  const repo = await startTestRepo('pglite', { repo: ONE_THREAD, timeouts: { urlPreviewTimeoutSeconds: 2 } });
  t.teardown(() => repo.close());
  const targets = [
    `http://127.0.0.1:${P}/`,
    `http://localhost:${P}/`,
    `http://[::1]:${P}/`,
    `http://[::ffff:127.0.0.1]:${P}/`,
    `http://0.0.0.0:${P}/`,
    `http://2130706433:${P}/`,
    `http://0x7f.1:${P}/`,
    `http://127.1:${P}/`,
    `http://017700000001:${P}/`,
    `http://internal.preview.test:${P}/`,
    `http://mixed.preview.test:${P}/`,
    // A port scan: the same refusal whatever listens there.
    'http://127.0.0.1:22/',
    'http://127.0.0.1:5432/',
    'http://127.0.0.1:6379/',
    `http://127.0.0.1:${P + 1}/`,
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/',
    'http://10.0.0.1/',
    'http://[::]/',
  ];
  for (const target of targets) {
    const res = await repo.fetch(`/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(target)}`, {
      token: ALICE,
    });
    const body = (await res.json()) as { errcode?: string; error?: string };
    t.equal(res.status, 403, `${target} refused`);
    t.equal(body.errcode, 'M_FORBIDDEN', target);
    t.notMatch(body.error ?? '', /secret/, 'nothing of the target in the answer');
  }
  t.same(seen, [], 'the internal service saw no request');
});

t.test('derived fetches from an allowed page: redirects, og:image, oEmbed discovery', async (t) => {
  seen.length = 0;
  const denied = await listen('127.0.0.2', recorder('denied'));
  const D = `http://127.0.0.2:${denied.port}`;
  const allowedHits: string[] = [];
  const allowed = await listen('127.0.0.1', (req, res) => {
    allowedHits.push(req.url!);
    const html = (s: string) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(s);
    if (req.url === '/redirect') return void res.writeHead(302, { Location: `${D}/after-redirect` }).end();
    if (req.url === '/redirect-mapped')
      return void res.writeHead(307, { Location: `http://[::ffff:127.0.0.2]:${denied.port}/mapped` }).end();
    if (req.url === '/redirect-port') return void res.writeHead(302, { Location: `http://127.0.0.2:22/` }).end();
    if (req.url === '/og-image')
      return html(
        `<meta property="og:title" content="Has a bad image"><meta property="og:image" content="${D}/image.png">`,
      );
    if (req.url === '/oembed-link')
      return html(`<title>Linked</title><link rel="alternate" type="application/json+oembed" href="${D}/oembed.json">`);
    return void res.writeHead(404).end();
  });
  // Only the allowed fixture's exact address is allowed; 127.0.0.2 stays under the default deny.
  const repo = await startTestRepo('pglite', {
    repo: ONE_THREAD, // the patched lookup, as above
    urlPreviews: { allowedNetworks: ['127.0.0.1/32'], oEmbed: true },
    timeouts: { urlPreviewTimeoutSeconds: 2 },
  });
  t.teardown(async () => {
    await repo.close();
    for (const s of [denied.server, allowed.server]) {
      s.closeAllConnections();
      s.close();
    }
  });
  const A = `http://127.0.0.1:${allowed.port}`;
  const get = async (path: string) => {
    const res = await repo.fetch(`/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(A + path)}`, {
      token: ALICE,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  for (const path of ['/redirect', '/redirect-mapped', '/redirect-port']) {
    const r = await get(path);
    t.equal(r.status, 403, `${path}: refused`);
    t.equal(r.body.errcode, 'M_FORBIDDEN');
  }
  const img = await get('/og-image');
  t.equal(img.status, 200, 'the page previews');
  t.equal(img.body['og:title'], 'Has a bad image');
  t.notOk(img.body['og:image'], 'without the denied image');
  const linked = await get('/oembed-link');
  t.equal(linked.status, 200);
  t.equal(linked.body['og:title'], 'Linked', 'the page fields, not a denied oEmbed answer');
  t.same(seen, [], 'the denied address saw no request');
  t.same(allowedHits.sort(), ['/oembed-link', '/og-image', '/redirect', '/redirect-mapped', '/redirect-port']);
});

t.test('disabled previews: 404 M_UNRECOGNIZED', async (t) => {
  const repo = await startTestRepo('pglite', { urlPreviews: { enabled: false } });
  t.teardown(() => repo.close());
  const res = await repo.fetch(
    `/_matrix/client/v1/media/preview_url?url=${encodeURIComponent('https://example.org/')}`,
    { token: ALICE },
  );
  t.equal(res.status, 404);
  t.equal(((await res.json()) as { errcode: string }).errcode, 'M_UNRECOGNIZED');
});

t.teardown(() => {
  (dns.promises as { lookup: unknown }).lookup = realLookup;
  internal.server.closeAllConnections();
  internal.server.close();
});
