import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALICE } from './helpers/repo.js';
import { startFederatingServer } from './helpers/federation.js';

// B (a media repo) against hand-written peers: fallback to the legacy endpoint, Location parts
// followed through the address checks, size limits, silent peers, and stream-through.

const FILE = Buffer.alloc(150_000, 7);
const BOUNDARY = 'b0undary0123456789abcdef';

function multipartHead(extra: string): string {
  return `--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n${extra}\r\n\r\n`;
}

async function listen(host: string, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as AddressInfo).port };
}

t.test('remote peers that misbehave or answer the old way', async (t) => {
  const cdnHits: string[] = [];
  const cdn = await listen('127.0.0.1', (req, res) => {
    cdnHits.push(req.url!);
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(FILE);
  });
  const denied = await listen('127.0.0.2', (req, res) => {
    cdnHits.push(`denied:${req.url}`);
    res.end(FILE);
  });
  const v1Hits = new Map<string, number>();
  let releaseSlow!: () => void;
  const slowReleased = new Promise<void>((r) => (releaseSlow = r));
  const peer = await listen('127.0.0.1', (req, res) => {
    const url = req.url!;
    const v1 = url.startsWith('/_matrix/federation/v1/media/download/');
    const id = url.split('/').pop()!.split('?')[0]!;
    if (v1) v1Hits.set(id, (v1Hits.get(id) ?? 0) + 1);
    if (!v1) {
      // The legacy endpoint (fallback target).
      if (id === 'toolong') return res.writeHead(200, { 'Content-Length': String(10_000_000) }).end();
      if (id === 'redir307') return res.writeHead(307, { Location: `http://127.0.0.1:${cdn.port}/cdn/legacy` }).end();
      if (id === 'redirdenied')
        return res.writeHead(307, { Location: `http://127.0.0.2:${denied.port}/cdn/legacy` }).end();
      return res
        .writeHead(200, { 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename="old.txt"' })
        .end(FILE);
    }
    if (id === 'unrec' || id === 'redir307' || id === 'redirdenied')
      return res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errcode":"M_UNRECOGNIZED","error":"?"}');
    if (id === 'bad400') return res.writeHead(400).end('nope');
    if (id === 'html404') return res.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>Not Found</h1>');
    if (id === 'gone')
      return res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errcode":"M_NOT_FOUND","error":"no"}');
    if (id === 'silent') return; // never answers
    if (id === 'toolong') return res.writeHead(500).end();
    res.writeHead(200, { 'Content-Type': `multipart/mixed; boundary=${BOUNDARY}` });
    if (id === 'loc')
      return res.end(multipartHead(`Location: http://127.0.0.1:${cdn.port}/cdn/file`) + `\r\n--${BOUNDARY}--\r\n`);
    if (id === 'locdenied')
      return res.end(multipartHead(`Location: http://127.0.0.2:${denied.port}/cdn/file`) + `\r\n--${BOUNDARY}--\r\n`);
    if (id === 'huge') {
      res.write(multipartHead('Content-Type: application/octet-stream'));
      res.end(Buffer.alloc(400_000, 1));
      return;
    }
    if (id === 'pair') {
      res.write(multipartHead('Content-Type: application/octet-stream'));
      setTimeout(() => res.end(Buffer.concat([FILE, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)])), 300);
      return;
    }
    if (id === 'slow') {
      res.write(multipartHead('Content-Type: application/octet-stream'));
      res.write(FILE.subarray(0, 50_000));
      void slowReleased.then(() =>
        res.end(Buffer.concat([FILE.subarray(50_000), Buffer.from(`\r\n--${BOUNDARY}--\r\n`)])),
      );
      return;
    }
    res.end(`\r\n--${BOUNDARY}--\r\n`);
  });
  const b = await startFederatingServer('pglite', {
    downloads: { maxBytes: 200_000 },
    timeouts: { federationTimeoutSeconds: 2 },
  });
  t.teardown(async () => {
    await b.close();
    for (const s of [cdn, denied, peer]) {
      s.server.closeAllConnections();
      s.server.close();
    }
  });
  const origin = `127.0.0.1:${peer.port}`;
  const get = (id: string) => b.repo.fetch(`/_matrix/client/v1/media/download/${origin}/${id}`, { token: ALICE });

  for (const id of ['unrec', 'bad400', 'html404']) {
    t.test(`v1 answered ${id}: falls back to the legacy endpoint`, async (t) => {
      const res = await get(id);
      t.equal(res.status, 200);
      t.ok(Buffer.from(await res.arrayBuffer()).equals(FILE));
      t.equal(res.headers.get('content-type'), 'text/plain');
      t.match(res.headers.get('content-disposition'), /filename=old\.txt/);
    });
  }

  t.test('a 404 M_NOT_FOUND passes through as 404', async (t) => {
    const res = await get('gone');
    t.equal(res.status, 404);
    t.equal(((await res.json()) as { errcode: string }).errcode, 'M_NOT_FOUND');
  });

  t.test('a Location part is followed to an allowed CDN, never to a denied address', async (t) => {
    const res = await get('loc');
    t.equal(res.status, 200);
    t.ok(Buffer.from(await res.arrayBuffer()).equals(FILE));
    t.same(cdnHits, ['/cdn/file']);
    const bad = await get('locdenied');
    t.equal(bad.status, 502);
    t.notOk(
      cdnHits.some((h) => h.startsWith('denied:')),
      'the denied address was never contacted',
    );
  });

  t.test('a 307 from the legacy endpoint is followed to an allowed CDN, never to a denied address', async (t) => {
    const res = await get('redir307');
    t.equal(res.status, 200);
    t.ok(Buffer.from(await res.arrayBuffer()).equals(FILE));
    t.ok(cdnHits.includes('/cdn/legacy'));
    const bad = await get('redirdenied');
    t.equal(bad.status, 502);
    t.notOk(
      cdnHits.some((h) => h.startsWith('denied:')),
      'the denied address was never contacted',
    );
  });

  t.test('more than downloads.maxBytes: 502 M_TOO_LARGE (declared) or a cut-off stream (undeclared)', async (t) => {
    const declared = await get('toolong');
    // toolong is only reachable through the fallback when v1 fails: its v1 answer is a 500.
    t.equal(declared.status, 502);
    const res = await get('huge');
    let cut = false;
    try {
      await res.arrayBuffer();
    } catch {
      cut = true;
    }
    t.ok(res.status !== 200 || cut, 'never a complete 200 for an oversized file');
    // The failure reaches the other HTTP threads over their bus a moment after the cut.
    await new Promise((r) => setTimeout(r, 100));
    const again = await get('huge');
    t.equal(again.status, 502, 'the failure is remembered');
    t.equal(((await again.json()) as { errcode: string }).errcode, 'M_TOO_LARGE');
  });

  t.test('concurrent requests for one remote file make one fetch; all get the whole file', async (t) => {
    const results = await Promise.all([get('pair'), get('pair'), get('pair')]);
    for (const r of results) {
      t.equal(r.status, 200);
      t.ok(Buffer.from(await r.arrayBuffer()).equals(FILE));
    }
    t.equal(v1Hits.get('pair'), 1, 'the peer was asked once');
  });

  t.test('without a signing key: one loud warning at start, and only the legacy endpoint is used', async (t) => {
    const keyless = await startFederatingServer(
      'pglite',
      { timeouts: { federationTimeoutSeconds: 2 } },
      { signingKey: false },
    );
    t.teardown(() => keyless.close());
    t.equal(keyless.repo.logs.filter((l) => /no signingKeyPath/.test(l)).length, 1, 'warned once');
    const before = v1Hits.get('keyless') ?? 0;
    const res = await keyless.repo.fetch(`/_matrix/client/v1/media/download/${origin}/keyless`, { token: ALICE });
    t.equal(res.status, 200);
    t.ok(Buffer.from(await res.arrayBuffer()).equals(FILE), 'served by the legacy endpoint');
    t.equal(v1Hits.get('keyless') ?? 0, before, 'the federation endpoint was not asked');
  });

  t.test('a peer that never answers: 502 within the federation timeout', async (t) => {
    const started = Date.now();
    const res = await get('silent');
    t.equal(res.status, 502);
    t.ok(Date.now() - started < 5000, `answered after ${Date.now() - started} ms`);
  });

  t.test('stream-through: the first client gets bytes before the remote transfer has finished', async (t) => {
    const res = await get('slow');
    t.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    t.ok(first.value && first.value.length > 0, 'bytes arrived while the peer still holds the rest back');
    releaseSlow();
    let total = first.value!.length;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
    }
    t.equal(total, FILE.length);
    const stored = await get('slow');
    t.ok(Buffer.from(await stored.arrayBuffer()).equals(FILE), 'then served from storage');
  });
});
