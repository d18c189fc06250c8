// Server discovery (src/matrix/discovery.ts) with a fake SRV resolver, a fake A/AAAA resolver
// (every *.test name is 127.0.0.1) and one loopback fixture serving each name's
// .well-known/matrix/server over plain http (httpOnly + wellKnownPort).
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_DENIED_RANGES, IpRangeList } from '../src/net/ip-ranges.js';
import { createDiscovery, parseServerName, type DiscoveryOptions } from '../src/matrix/discovery.js';
import { safeRequest } from '../src/net/safe-request.js';

const DENY = IpRangeList.parse(DEFAULT_DENIED_RANGES);
const LOOPBACK = IpRangeList.parse(['127.0.0.1/32', '::1/128']);

type Reply = { status?: number; body: string | Buffer; headers?: Record<string, string> };
const wellKnown: Record<string, Reply> = {};
const hits: Record<string, number> = {};
const server = http.createServer((req, res) => {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  if (req.url === '/echo') return res.end(JSON.stringify({ host: req.headers.host }));
  hits[host] = (hits[host] ?? 0) + 1;
  if (host === 'huge.test') {
    // 10 MB, streamed: the client must stop at its 64 KiB cap
    res.write('{"m.server": "');
    let sent = 0;
    const more = (): void => {
      while (sent < 10 << 20) {
        sent += 65536;
        if (!res.write('x'.repeat(65536))) return void res.once('drain', more);
      }
      res.end('"}');
    };
    return more();
  }
  const r = wellKnown[host];
  if (!r) {
    res.statusCode = 404;
    return res.end('{}');
  }
  res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers });
  res.end(r.body);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const PORT = (server.address() as AddressInfo).port;
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});

const srvRecords: Record<string, { name: string; port: number; priority: number; weight: number }[]> = {};
const srvAsked: string[] = [];
let clock = 1_000_000_000;
const base: DiscoveryOptions = {
  allow: LOOPBACK,
  deny: DENY,
  timeoutMs: 2000,
  httpOnly: true,
  wellKnownPort: PORT,
  now: () => clock,
  resolve: async (h) => {
    if (h.endsWith('.test')) return ['127.0.0.1'];
    throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  },
  resolveSrv: async (name) => {
    srvAsked.push(name);
    if (srvRecords[name]) return srvRecords[name];
    throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  },
};
const delegate = (host: string, server: unknown, headers?: Record<string, string>): void => {
  wellKnown[host] = { body: JSON.stringify({ 'm.server': server }), headers };
};

t.test('server name validation', async (t) => {
  t.match(parseServerName('example.org'), { host: 'example.org', port: undefined, ip: false });
  t.match(parseServerName('[2001:db8::1]:8448'), { host: '2001:db8::1', port: 8448, ip: true });
  t.match(parseServerName('1.2.3.4:80'), { host: '1.2.3.4', port: 80, ip: true });
  const d = createDiscovery(base);
  for (const bad of [
    '',
    'a b',
    'host:0',
    'host:65536',
    'host:',
    '[not-ip]',
    '[::1',
    '::1',
    '2130706433',
    '127.1',
    'a.0x7f',
    'foo..bar',
    'x/y',
    'host:12:13',
    `${'a'.repeat(64)}.org`,
  ]) {
    t.equal(parseServerName(bad), null, JSON.stringify(bad));
    await t.rejects(d.resolve(bad), /invalid server name/);
  }
});

t.test('IP literals and explicit ports skip .well-known', async (t) => {
  const d = createDiscovery(base);
  t.same(await d.resolve('1.2.3.4'), {
    serverName: '1.2.3.4',
    host: '1.2.3.4',
    port: 8448,
    hostHeader: '1.2.3.4',
    tlsServername: '1.2.3.4',
    baseUrl: 'http://1.2.3.4',
  });
  t.match(await d.resolve('1.2.3.4:1234'), { host: '1.2.3.4', port: 1234, hostHeader: '1.2.3.4:1234' });
  t.match(await d.resolve('[2001:db8::1]'), {
    host: '2001:db8::1',
    port: 8448,
    hostHeader: '[2001:db8::1]',
    baseUrl: 'http://[2001:db8::1]',
  });
  t.match(await d.resolve('[::1]:99'), { host: '::1', port: 99, hostHeader: '[::1]:99' });
  t.same(await d.resolve('explicit.test:9000'), {
    serverName: 'explicit.test:9000',
    host: 'explicit.test',
    port: 9000,
    hostHeader: 'explicit.test:9000',
    tlsServername: 'explicit.test',
    baseUrl: 'http://explicit.test:9000',
  });
  t.equal(hits['explicit.test'], undefined, 'no .well-known fetch');
  t.equal(srvAsked.length, 0, 'no SRV lookups');
  t.equal((await createDiscovery({ ...base, httpOnly: false }).resolve('1.2.3.4')).baseUrl, 'https://1.2.3.4');
});

t.test('.well-known delegation', async (t) => {
  const d = createDiscovery(base);
  delegate('port.test', 'target.test:4443');
  t.same(await d.resolve('port.test'), {
    serverName: 'port.test',
    host: 'target.test',
    port: 4443,
    hostHeader: 'target.test:4443',
    tlsServername: 'target.test',
    baseUrl: 'http://target.test:4443',
  });
  delegate('ip.test', '10.9.8.7');
  t.match(await d.resolve('ip.test'), {
    host: '10.9.8.7',
    port: 8448,
    hostHeader: '10.9.8.7',
    tlsServername: '10.9.8.7',
  });
  delegate('ip6.test', '[2001:db8::5]:8000');
  t.match(await d.resolve('ip6.test'), { host: '2001:db8::5', port: 8000, hostHeader: '[2001:db8::5]:8000' });
  delegate('srv.test', 'deleg-srv.test');
  srvRecords['_matrix-fed._tcp.deleg-srv.test'] = [{ name: 'fed.host.test.', port: 7777, priority: 10, weight: 5 }];
  srvRecords['_matrix._tcp.deleg-srv.test'] = [{ name: 'old.host.test', port: 1, priority: 0, weight: 0 }];
  t.same(
    await d.resolve('srv.test'),
    {
      serverName: 'srv.test',
      host: 'fed.host.test',
      port: 7777,
      hostHeader: 'deleg-srv.test',
      tlsServername: 'deleg-srv.test',
      baseUrl: 'http://deleg-srv.test',
    },
    '_matrix-fed first',
  );
  delegate('old.test', 'deleg-old.test');
  srvRecords['_matrix._tcp.deleg-old.test'] = [{ name: 'legacy.host.test', port: 5555, priority: 0, weight: 0 }];
  t.match(
    await d.resolve('old.test'),
    { host: 'legacy.host.test', port: 5555, hostHeader: 'deleg-old.test', tlsServername: 'deleg-old.test' },
    'deprecated _matrix._tcp',
  );
  delegate('nosrv.test', 'deleg-plain.test');
  t.match(await d.resolve('nosrv.test'), {
    host: 'deleg-plain.test',
    port: 8448,
    hostHeader: 'deleg-plain.test',
    tlsServername: 'deleg-plain.test',
  });
  wellKnown['redir.test'] = {
    status: 302,
    body: '',
    headers: { location: `http://port.test:${PORT}/.well-known/matrix/server` },
  };
  t.match(await d.resolve('redir.test'), { host: 'target.test', port: 4443 }, 'redirects followed');
  delegate('e2e.test', `127.0.0.1:${PORT}`);
  const r = await d.resolve('e2e.test');
  const res = await safeRequest(`${r.baseUrl}/echo`, {
    ...base,
    maxBytes: 1024,
    connectTo: { host: r.host, port: r.port },
    tlsServername: r.tlsServername,
  });
  t.same(
    JSON.parse(
      await new Promise<string>((ok) => {
        let s = '';
        res.body.on('data', (c) => (s += c)).on('end', () => ok(s));
      }),
    ),
    { host: `127.0.0.1:${PORT}` },
    'usable with safeRequest',
  );
});

t.test('no .well-known: SRV on the server name, then :8448', async (t) => {
  const d = createDiscovery(base);
  srvRecords['_matrix-fed._tcp.plain-fed.test'] = [
    { name: 'backup.test', port: 2, priority: 20, weight: 100 },
    { name: 'primary.test', port: 1, priority: 10, weight: 1 },
  ];
  t.same(
    await d.resolve('plain-fed.test'),
    {
      serverName: 'plain-fed.test',
      host: 'primary.test',
      port: 1,
      hostHeader: 'plain-fed.test',
      tlsServername: 'plain-fed.test',
      baseUrl: 'http://plain-fed.test',
    },
    'lowest priority',
  );
  srvRecords['_matrix._tcp.plain-old.test'] = [{ name: 'old-target.test', port: 3, priority: 0, weight: 0 }];
  t.match(
    await d.resolve('plain-old.test'),
    { host: 'old-target.test', port: 3, hostHeader: 'plain-old.test' },
    'deprecated _matrix._tcp',
  );
  srvRecords['_matrix-fed._tcp.dot.test'] = [{ name: '.', port: 0, priority: 0, weight: 0 }];
  t.match(await d.resolve('dot.test'), { host: 'dot.test', port: 8448 }, 'SRV "." ignored');
  t.same(await d.resolve('bare.test'), {
    serverName: 'bare.test',
    host: 'bare.test',
    port: 8448,
    hostHeader: 'bare.test',
    tlsServername: 'bare.test',
    baseUrl: 'http://bare.test',
  });
  t.ok(
    srvAsked.includes('_matrix-fed._tcp.bare.test') && srvAsked.includes('_matrix._tcp.bare.test'),
    'both SRV names tried',
  );
  const denied = createDiscovery({ ...base, allow: IpRangeList.parse([]) });
  delegate('blocked.test', 'elsewhere.test:1');
  t.match(
    await denied.resolve('blocked.test'),
    { host: 'blocked.test', port: 8448 },
    '.well-known on a denied address is not fetched',
  );
  t.equal(hits['blocked.test'], undefined);
});

t.test('invalid m.server values fall back to the server name', async (t) => {
  const d = createDiscovery(base);
  const bad: unknown[] = [123, '', 'bad name!', '127.1', 'host:99999', '[::1', null, ['a.test']];
  for (const [i, v] of bad.entries()) {
    delegate(`inv${i}.test`, v);
    t.match(
      await d.resolve(`inv${i}.test`),
      { host: `inv${i}.test`, port: 8448, hostHeader: `inv${i}.test` },
      JSON.stringify(v),
    );
  }
  wellKnown['notjson.test'] = { body: '<html>' };
  wellKnown['nokey.test'] = { body: '{"m.homeserver": "x"}' };
  wellKnown['array.test'] = { body: '[1]' };
  for (const h of ['notjson.test', 'nokey.test', 'array.test']) t.match(await d.resolve(h), { host: h, port: 8448 }, h);
});

t.test('a 10 MB .well-known fails fast and is cached as an error', async (t) => {
  const d = createDiscovery(base);
  const start = Date.now();
  t.match(await d.resolve('huge.test'), { host: 'huge.test', port: 8448 });
  t.ok(Date.now() - start < 1500, `fast (${Date.now() - start} ms)`);
  t.match(await d.resolve('huge.test'), { host: 'huge.test', port: 8448 });
  t.equal(hits['huge.test'], 1, 'cached');
  clock += 11 * 60_000;
  await d.resolve('huge.test');
  t.equal(hits['huge.test'], 2, 'error cache expires after 10 min');
});

t.test('caching per max-age / Expires, with an injected clock', async (t) => {
  const d = createDiscovery(base);
  delegate('cache.test', 'one.test:1', { 'cache-control': 'public, max-age=3600' });
  t.match(await d.resolve('cache.test'), { host: 'one.test' });
  delegate('cache.test', 'two.test:2', { 'cache-control': 'max-age=3600' });
  clock += 3500_000;
  t.match(await d.resolve('cache.test'), { host: 'one.test' }, 'still cached');
  clock += 200_000;
  t.match(await d.resolve('cache.test'), { host: 'two.test' }, 'refetched after max-age');
  t.equal(hits['cache.test'], 2);
  delegate('exp.test', 'e.test:1', { expires: new Date(clock + 7200_000).toUTCString() });
  await d.resolve('exp.test');
  clock += 7000_000;
  await d.resolve('exp.test');
  t.equal(hits['exp.test'], 1, 'Expires honoured');
  clock += 300_000;
  await d.resolve('exp.test');
  t.equal(hits['exp.test'], 2);
  delegate('long.test', 'l.test:1', { 'cache-control': 'max-age=31536000' });
  await d.resolve('long.test');
  clock += 49 * 3600_000;
  await d.resolve('long.test');
  t.equal(hits['long.test'], 2, 'capped at 48 h');
  delegate('dflt.test', 'd.test:1');
  await d.resolve('dflt.test');
  clock += 23 * 3600_000;
  await d.resolve('dflt.test');
  t.equal(hits['dflt.test'], 1, 'default 24 h');
  clock += 2 * 3600_000;
  await d.resolve('dflt.test');
  t.equal(hits['dflt.test'], 2);
  delete wellKnown['miss.test'];
  await d.resolve('miss.test');
  clock += 9 * 60_000;
  await d.resolve('miss.test');
  t.equal(hits['miss.test'], 1, '404 cached for 10 min');
  d.clearCache();
  await d.resolve('miss.test');
  t.equal(hits['miss.test'], 2, 'clearCache');
  delegate('conc.test', 'c.test:1');
  await Promise.all([d.resolve('conc.test'), d.resolve('conc.test'), d.resolve('conc.test')]);
  t.equal(hits['conc.test'], 1, 'concurrent resolves share one fetch');
});
