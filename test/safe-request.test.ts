// The outbound client (src/net/safe-request.ts) against real loopback sockets: deny lists on
// every hop and every resolved address, IP-literal spellings of loopback, pinning (one lookup,
// no rebinding), redirect limits, byte caps, the total deadline, connectTo, safeJson.
import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { DEFAULT_DENIED_RANGES, IpRangeList } from '../src/net/ip-ranges.js';
import { OutboundError, safeJson, safeRequest, type SafeRequestOptions } from '../src/net/safe-request.js';

const DENY = IpRangeList.parse(DEFAULT_DENIED_RANGES);
const LOOPBACK = IpRangeList.parse(['127.0.0.1/32', '::1/128']);
const NONE = IpRangeList.parse([]);

function fixture(tag: string): http.Server {
  return http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const p = u.pathname;
    if (p === '/echo') {
      res.setHeader('content-type', 'application/json');
      return res.end(
        JSON.stringify({
          tag,
          host: req.headers.host,
          authorization: req.headers.authorization ?? null,
          method: req.method,
        }),
      );
    }
    if (p.startsWith('/chain/')) {
      const n = Number(p.slice(7));
      if (n === 0) return res.end('end of chain');
      res.writeHead(302, { location: `/chain/${n - 1}` });
      return res.end('redirect body that is never read');
    }
    if (p === '/to') {
      res.writeHead(Number(u.searchParams.get('s') ?? 302), { location: u.searchParams.get('loc')! });
      return res.end();
    }
    if (p === '/big-cl') {
      res.writeHead(200, { 'content-length': 5000 });
      return res.end(Buffer.alloc(5000));
    }
    if (p === '/big-chunked') {
      res.write(Buffer.alloc(3000));
      setTimeout(() => res.end(Buffer.alloc(3000)), 20);
      return;
    }
    if (p === '/trickle') {
      res.writeHead(200);
      const iv = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(iv));
      return;
    }
    if (p === '/hang') return; // never answers
    if (p === '/json') return res.end(JSON.stringify({ ok: true }));
    if (p === '/json-big') return res.end(JSON.stringify({ pad: 'x'.repeat(100_000) }));
    if (p === '/badjson') return res.end('{"ok": tru');
    if (p === '/404') {
      res.statusCode = 404;
      return res.end(JSON.stringify({ errcode: 'M_NOT_FOUND' }));
    }
    res.end(`hello from ${tag}`);
  });
}

async function listen(s: http.Server, host: string, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve());
  });
  return (s.address() as AddressInfo).port;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return e instanceof OutboundError ? e.kind : `other: ${(e as Error).message}`;
  }
}

const A = fixture('A');
const PORT = await listen(A, '127.0.0.1');
const base = `http://127.0.0.1:${PORT}`;
const names =
  (map: Record<string, string[]>) =>
  async (h: string): Promise<string[]> => {
    if (map[h]) return map[h];
    throw Object.assign(new Error(`ENOTFOUND ${h}`), { code: 'ENOTFOUND' });
  };
const loop: SafeRequestOptions = {
  allow: LOOPBACK,
  deny: DENY,
  timeoutMs: 3000,
  maxBytes: 1 << 20,
  resolve: names({ 'a.test': ['127.0.0.1'], 'b.test': ['127.0.0.1'] }),
};
const strict: SafeRequestOptions = { ...loop, allow: NONE };
t.teardown(() => {
  A.closeAllConnections();
  A.close();
});

t.test('allowed when loopback is explicitly allowed, refused with default lists', async (t) => {
  const r = await safeRequest(`${base}/`, loop);
  t.equal(r.status, 200);
  t.equal(r.remoteAddress, '127.0.0.1');
  t.equal((await readAll(r.body)).toString(), 'hello from A');
  const viaName = await safeRequest(`http://a.test:${PORT}/echo`, loop);
  t.match(JSON.parse((await readAll(viaName.body)).toString()), { tag: 'A', host: `a.test:${PORT}` });
  for (const u of [
    `${base}/`,
    `http://2130706433:${PORT}/`,
    `http://0x7f.1:${PORT}/`,
    `http://0177.0.0.1:${PORT}/`,
    `http://[::ffff:127.0.0.1]:${PORT}/`,
    `http://[::ffff:7f00:1]:${PORT}/`,
    `http://[::1]:${PORT}/`,
    `http://a.test:${PORT}/`,
  ]) {
    t.equal(await code(safeRequest(u, strict)), 'denied_address', u);
  }
  t.equal(
    await code(safeRequest(`http://localhost:${PORT}/`, { ...strict, resolve: undefined })),
    'denied_address',
    'real DNS for localhost',
  );
});

t.test('a name with any denied address is refused', async (t) => {
  const mixed = names({ 'mixed.test': ['93.184.215.14', '127.0.0.1'], 'mixed2.test': ['127.0.0.1', '10.1.2.3'] });
  t.equal(await code(safeRequest(`http://mixed.test:${PORT}/`, { ...strict, resolve: mixed })), 'denied_address');
  t.equal(
    await code(safeRequest(`http://mixed2.test:${PORT}/`, { ...loop, resolve: mixed })),
    'denied_address',
    'allowed + private',
  );
  t.equal(await code(safeRequest(`http://nowhere.test:${PORT}/`, loop)), 'dns');
  t.equal(await code(safeRequest(`http://empty.test:${PORT}/`, { ...loop, resolve: async () => [] })), 'dns');
});

t.test('pinning: one lookup, the connection goes to the checked address', async (t) => {
  const B = fixture('B');
  let bound = true;
  await listen(B, '::1', PORT).catch(() => {
    bound = false;
  });
  t.teardown(() => {
    B.closeAllConnections();
    B.close();
  });
  let calls = 0;
  const flip = async (): Promise<string[]> => (++calls === 1 ? ['127.0.0.1'] : ['::1']);
  const r = await safeRequest(`http://rebind.test:${PORT}/echo`, { ...loop, resolve: flip });
  t.equal(calls, 1, 'resolver called exactly once');
  t.equal(r.remoteAddress, '127.0.0.1');
  t.match(
    JSON.parse((await readAll(r.body)).toString()),
    { tag: 'A' },
    bound ? 'hit A, not B on ::1' : 'hit A (::1 unavailable)',
  );
  let calls2 = 0;
  const toPrivate = async (): Promise<string[]> => (++calls2 === 1 ? ['127.0.0.1'] : ['10.0.0.1']);
  const r2 = await safeRequest(`http://rebind.test:${PORT}/`, { ...loop, resolve: toPrivate });
  t.equal(calls2, 1);
  t.equal((await readAll(r2.body)).toString(), 'hello from A');
});

t.test('redirects', async (t) => {
  const ok = await safeRequest(`${base}/chain/5`, loop);
  t.equal(ok.status, 200);
  t.equal(ok.url, `${base}/chain/0`);
  t.equal((await readAll(ok.body)).toString(), 'end of chain');
  t.equal(await code(safeRequest(`${base}/chain/6`, loop)), 'too_many_redirects');
  t.equal(await code(safeRequest(`${base}/chain/3`, { ...loop, maxRedirects: 2 })), 'too_many_redirects');
  const raw = await safeRequest(`${base}/chain/1`, { ...loop, maxRedirects: 0 });
  t.equal(raw.status, 302, 'maxRedirects 0 returns the 3xx');
  t.equal(raw.headers.location, '/chain/0');
  raw.body.destroy();
  const to = (loc: string, s = 302): string => `${base}/to?s=${s}&loc=${encodeURIComponent(loc)}`;
  for (const loc of [
    `http://127.0.0.2:${PORT}/`,
    `http://[::ffff:127.0.0.2]:${PORT}/`,
    `http://2130706434:${PORT}/`,
    'http://169.254.169.254/latest/meta-data/',
  ]) {
    t.equal(await code(safeRequest(to(loc), loop)), 'denied_address', `redirect to ${loc}`);
  }
  const priv = names({ 'a.test': ['127.0.0.1'], 'inner.test': ['10.0.0.5'] });
  t.equal(
    await code(safeRequest(to('http://inner.test/'), { ...loop, resolve: priv })),
    'denied_address',
    'redirect target re-resolved',
  );
  t.equal(await code(safeRequest(to('file:///etc/passwd'), loop)), 'bad_url');
  t.equal(await code(safeRequest(to('gopher://127.0.0.1/'), loop)), 'bad_url');
  t.equal(await code(safeRequest('file:///etc/passwd', loop)), 'bad_url');
  t.equal(await code(safeRequest('not a url', loop)), 'bad_url');
  const auth = { ...loop, headers: { Authorization: 'X-Matrix secret' } };
  const same = await safeRequest(to('/echo', 307), auth);
  t.match(JSON.parse((await readAll(same.body)).toString()), { authorization: 'X-Matrix secret' }, 'kept same-origin');
  const cross = await safeRequest(to(`http://b.test:${PORT}/echo`), auth);
  t.match(
    JSON.parse((await readAll(cross.body)).toString()),
    { authorization: null, host: `b.test:${PORT}` },
    'dropped cross-origin',
  );
  const post = await safeRequest(to('/echo', 303), { ...loop, method: 'POST' });
  t.match(JSON.parse((await readAll(post.body)).toString()), { method: 'GET' }, '303 turns into GET');
});

t.test('byte cap', async (t) => {
  for (const p of ['/big-cl', '/big-chunked']) {
    const r = await safeRequest(`${base}${p}`, { ...loop, maxBytes: 4096 });
    t.equal(await code(readAll(r.body)), 'too_large', p);
  }
  const exact = await safeRequest(`${base}/big-cl`, { ...loop, maxBytes: 5000 });
  t.equal((await readAll(exact.body)).length, 5000, 'exactly the cap is fine');
  const unread = await safeRequest(`${base}/big-cl`, { ...loop, maxBytes: 10 });
  unread.body.destroy(); // never read: must not crash or leak
});

t.test('total deadline', async (t) => {
  const start = Date.now();
  const r = await safeRequest(`${base}/trickle`, { ...loop, timeoutMs: 500 });
  t.equal(r.status, 200, 'headers arrive');
  t.equal(await code(readAll(r.body)), 'timeout', 'trickling body cut at the deadline');
  const took = Date.now() - start;
  t.ok(took >= 450 && took < 2000, `~500 ms (${took})`);
  const s2 = Date.now();
  t.equal(await code(safeRequest(`${base}/hang`, { ...loop, timeoutMs: 500 })), 'timeout', 'no response at all');
  t.ok(Date.now() - s2 < 2000);
  const slowDns = async (): Promise<string[]> => new Promise(() => {});
  t.equal(
    await code(safeRequest('http://slow.test/', { ...loop, timeoutMs: 300, resolve: slowDns })),
    'timeout',
    'hung resolver',
  );
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('caller gave up')), 100);
  t.equal(
    await code(safeRequest(`${base}/hang`, { ...loop, signal: ac.signal })),
    'other: caller gave up',
    'caller signal',
  );
});

t.test('connectTo keeps the URL host for Host; TLS failures are tls', async (t) => {
  const r = await safeRequest('http://matrix.example.org/echo', {
    ...loop,
    connectTo: { host: '127.0.0.1', port: PORT },
  });
  t.match(JSON.parse((await readAll(r.body)).toString()), { tag: 'A', host: 'matrix.example.org' });
  const r2 = await safeRequest('http://matrix.example.org:8448/echo', {
    ...loop,
    connectTo: { host: 'a.test', port: PORT },
  });
  t.match(JSON.parse((await readAll(r2.body)).toString()), { host: 'matrix.example.org:8448' }, 'connectTo by name');
  t.equal(
    await code(safeRequest('http://matrix.example.org/', { ...strict, connectTo: { host: '127.0.0.1', port: PORT } })),
    'denied_address',
    'connectTo is checked too',
  );
  const h = await safeRequest(`${base}/echo`, { ...loop, headers: { Host: 'override.example' } });
  t.match(JSON.parse((await readAll(h.body)).toString()), { host: 'override.example' });
  t.equal(
    await code(safeRequest(`https://127.0.0.1:${PORT}/`, loop)),
    'tls',
    'TLS handshake against a plain HTTP server',
  );
  const closed = http.createServer();
  const cport = await listen(closed, '127.0.0.1');
  closed.close();
  t.equal(await code(safeRequest(`http://127.0.0.1:${cport}/`, loop)), 'connect');
});

t.test('safeJson', async (t) => {
  t.same((await safeJson(`${base}/json`, loop)).json, { ok: true });
  const { maxBytes: _unused, ...noCap } = loop;
  t.equal(await code(safeJson(`${base}/json-big`, noCap)), 'too_large', 'default 64 KiB cap');
  t.equal(await code(safeJson(`${base}/badjson`, loop)), 'http');
  t.equal(await code(safeJson(`${base}/404`, loop)), 'http');
  const nf = await safeJson(`${base}/404`, { ...loop, acceptStatus: [404] });
  t.equal(nf.status, 404);
  t.same(nf.json, { errcode: 'M_NOT_FOUND' });
  t.equal(await code(safeJson(`${base}/json`, strict)), 'denied_address');
});

/** A throwaway self-signed certificate for matrix.test, or null without an openssl binary. */
function selfSigned(): { key: Buffer; cert: Buffer } | null {
  const dir = mkdtempSync(join(tmpdir(), 'safe-request-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=matrix.test',
        '-addext',
        'subjectAltName=DNS:matrix.test',
        '-keyout',
        join(dir, 'k'),
        '-out',
        join(dir, 'c'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'k')), cert: readFileSync(join(dir, 'c')) };
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const creds = selfSigned();
t.test(
  'TLS: certificates verified by default, SNI is the intended name',
  { skip: creds ? false : 'no openssl binary' },
  async (t) => {
    if (!creds) return;
    const tls = https.createServer(creds, (req, res) =>
      res.end(
        JSON.stringify({
          sni: (req.socket as import('node:tls').TLSSocket).servername || null,
          host: req.headers.host,
        }),
      ),
    );
    const port = await listen(tls as unknown as http.Server, '127.0.0.1');
    t.teardown(() => {
      tls.closeAllConnections();
      tls.close();
    });
    t.equal(await code(safeRequest(`https://127.0.0.1:${port}/`, loop)), 'tls', 'self-signed refused');
    const lax = { ...loop, rejectUnauthorized: false };
    const viaConnect = await safeRequest('https://server.example/', {
      ...lax,
      connectTo: { host: '127.0.0.1', port },
      tlsServername: 'matrix.test',
    });
    t.same(JSON.parse((await readAll(viaConnect.body)).toString()), { sni: 'matrix.test', host: 'server.example' });
    const byName = await safeRequest(`https://a.test:${port}/`, lax);
    t.same(
      JSON.parse((await readAll(byName.body)).toString()),
      { sni: 'a.test', host: `a.test:${port}` },
      'SNI defaults to the URL host',
    );
    const literal = await safeRequest(`https://127.0.0.1:${port}/`, lax);
    t.same(
      JSON.parse((await readAll(literal.body)).toString()),
      { sni: null, host: `127.0.0.1:${port}` },
      'no SNI for IP literals',
    );
  },
);
