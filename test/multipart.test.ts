// multipart/mixed writer and streaming parser for federation media (MSC3916): round trips, every
// chunk split, streaming before the source ends, backpressure, truncation, limits, lookalike
// delimiters inside the data, Content-Type parsing and a real loopback HTTP exchange.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import {
  MultipartError,
  multipartBoundary,
  multipartResponse,
  newBoundary,
  parseMultipart,
} from '../src/matrix/multipart.js';

const B = 'testboundary0123456789abcdefghij';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
// One chunk per _read: Readable.from over Buffers keeps each element as its own 'data' event.
const chunked = (chunks: Buffer[]): Readable => Readable.from(chunks, { objectMode: false });

function raw(
  opts: { json?: string; headers?: string; body?: Buffer | string; preamble?: string; close?: boolean } = {},
): Buffer {
  const { json = '{}', headers = 'Content-Type: text/plain', body = 'hello', preamble = '', close = true } = opts;
  return Buffer.concat([
    Buffer.from(`${preamble}--${B}\r\nContent-Type: application/json\r\n\r\n${json}\r\n--${B}\r\n${headers}\r\n\r\n`),
    Buffer.from(body),
    Buffer.from(close ? `\r\n--${B}--\r\n` : ''),
  ]);
}

async function parseFile(chunks: Buffer[], limits?: { maxJsonBytes?: number; maxHeaderBytes?: number }) {
  const { json, part } = await parseMultipart(chunked(chunks), B, limits);
  if (part.kind !== 'file') throw new Error('expected a file part');
  return { json, part, bytes: await collect(part.body) };
}

async function writerBytes(file: Buffer | null, json: unknown = {}): Promise<{ boundary: string; msg: Buffer }> {
  const boundary = newBoundary();
  const f = file
    ? { contentType: 'application/octet-stream', contentDisposition: 'inline; filename=x', body: chunked([file]) }
    : { location: 'https://cdn.example/x' };
  return { boundary, msg: await collect(multipartResponse({ boundary, json, file: f })) };
}

t.test('newBoundary', async (t) => {
  const a = newBoundary();
  t.match(a, /^[A-Za-z0-9]{32,70}$/);
  t.not(a, newBoundary());
});

t.test('round trip writer -> parser', async (t) => {
  for (const file of [Buffer.alloc(0), Buffer.from([0x2d]), randomBytes(5 * 1024 * 1024)]) {
    const { boundary, msg } = await writerBytes(file, { restrictions: { a: 1 } });
    t.ok(msg.subarray(0, 2 + boundary.length).equals(Buffer.from(`--${boundary}`)), 'starts with the delimiter');
    const { json, part } = await parseMultipart(chunked([msg.subarray(0, 1000), msg.subarray(1000)]), boundary);
    t.same(json, { restrictions: { a: 1 } });
    if (part.kind !== 'file') throw new Error('kind');
    t.equal(part.contentType, 'application/octet-stream');
    t.equal(part.contentDisposition, 'inline; filename=x');
    t.same(part.headers, { 'content-type': 'application/octet-stream', 'content-disposition': 'inline; filename=x' });
    const bytes = await collect(part.body);
    t.equal(bytes.length, file.length);
    t.equal(sha(bytes), sha(file), `${file.length} bytes intact`);
  }
  const { boundary, msg } = await writerBytes(null);
  const { json, part } = await parseMultipart(chunked([msg]), boundary);
  t.same(json, {});
  t.same(part, { kind: 'location', location: 'https://cdn.example/x', headers: { location: 'https://cdn.example/x' } });
});

t.test('writer refuses header injection and a boundary inside the JSON', async (t) => {
  const body = chunked([]);
  t.throws(
    () => multipartResponse({ boundary: B, json: {}, file: { contentType: 'text/plain\r\nSet-Cookie: x', body } }),
    TypeError,
  );
  t.throws(() => multipartResponse({ boundary: B, json: {}, file: { location: 'https://x/\nFoo: bar' } }), TypeError);
  t.throws(() => multipartResponse({ boundary: B, json: { k: B }, file: { location: 'https://x/' } }), TypeError);
  t.throws(
    () => multipartResponse({ boundary: 'x'.repeat(71), json: {}, file: { location: 'https://x/' } }),
    TypeError,
  );
});

t.test('writer: a failing file stream fails the response; destroying it stops the file', async (t) => {
  async function* bad(): AsyncGenerator<Buffer> {
    yield Buffer.from('partial');
    throw new Error('disk gone');
  }
  const out = multipartResponse({
    boundary: B,
    json: {},
    file: { contentType: 'a/b', body: Readable.from(bad(), { objectMode: false }) },
  });
  await t.rejects(collect(out), { message: 'disk gone' }, 'never a complete-looking message');
  const file = new PassThrough();
  const res = multipartResponse({ boundary: B, json: {}, file: { contentType: 'a/b', body: file } });
  res.once('data', () => res.destroy());
  file.write('x');
  await new Promise((r) => res.once('close', r));
  await new Promise((r) => setImmediate(r));
  t.ok(file.destroyed, 'file stream destroyed with the response');
});

t.test('writer: backpressure from the consumer reaches the file stream', async (t) => {
  let produced = 0;
  async function* gen(): AsyncGenerator<Buffer> {
    for (const block = Buffer.alloc(64 * 1024); produced < 32 * 1024 * 1024; produced += block.length) yield block;
  }
  const out = multipartResponse({
    boundary: B,
    json: {},
    file: { contentType: 'a/b', body: Readable.from(gen(), { objectMode: false }) },
  });
  out.once('readable', () => {}); // start it, then read nothing
  await new Promise((r) => setTimeout(r, 200));
  t.ok(produced < 1024 * 1024, `only ${produced} bytes pulled while nobody reads`);
  const { part } = await parseMultipart(out, B);
  if (part.kind !== 'file') throw new Error('kind');
  t.equal((await collect(part.body)).length, 32 * 1024 * 1024);
});

t.test('every 2-way split and byte-at-a-time of a small message', async (t) => {
  const body = Buffer.from(`a\r\n--${B}x\r\n-${B}\r\n--${B}-z\r\r\n--${B}\r`);
  const msg = raw({ json: '{"k":[1,2]}', body, preamble: 'ignored preamble\r\n' });
  let ok = 0;
  for (let i = 0; i <= msg.length; i++) {
    const r = await parseFile([msg.subarray(0, i), msg.subarray(i)]);
    if (r.bytes.equals(body) && (r.json as { k: number[] }).k[1] === 2) ok++;
  }
  t.equal(ok, msg.length + 1, 'all splits parse identically');
  const bytes = [...msg].map((b) => Buffer.from([b]));
  t.ok((await parseFile(bytes)).bytes.equals(body), 'one byte per chunk');
});

t.test('random splits of a large message full of near-delimiters', async (t) => {
  // Decoys that match the delimiter's prefix, or all of it with a wrong follower, straddle chunks.
  // (Each ends in a byte that keeps the random bytes after it from completing a real delimiter.)
  const decoys = [`\r\n--${B.slice(0, 10)}`, `\r\n--${B}x`, `\r\n--${B}-x`, `\r\n--${B}\rx`, '\r\n-x', '\rx'];
  const pieces: Buffer[] = [];
  for (let n = 0; n < 2000; n++) pieces.push(randomBytes(n % 700), Buffer.from(decoys[n % decoys.length]));
  const body = Buffer.concat(pieces);
  const msg = raw({ body });
  for (let run = 0; run < 5; run++) {
    const chunks: Buffer[] = [];
    for (let p = 0; p < msg.length;) {
      const n = 1 + Math.floor(Math.random() * (run % 2 ? 100 : 70000));
      chunks.push(msg.subarray(p, p + n));
      p += n;
    }
    t.equal(sha((await parseFile(chunks)).bytes), sha(body), `run ${run}: ${chunks.length} chunks`);
  }
});

t.test('file body streams before the source ends', async (t) => {
  const body = randomBytes(200_000);
  const msg = raw({ body });
  const src = new PassThrough();
  const parsed = parseMultipart(src, B);
  const half = msg.length >> 1;
  src.write(msg.subarray(0, half));
  const { part } = await parsed;
  if (part.kind !== 'file') throw new Error('kind');
  const first = await new Promise<Buffer>((res) => part.body.once('data', res));
  t.ok(first.length > 0, 'data arrived with only half the message sent');
  t.notOk(src.writableEnded, 'source not ended yet');
  const rest = collect(part.body);
  src.end(msg.subarray(half));
  t.ok(Buffer.concat([first, await rest]).equals(body));
});

t.test('backpressure: an unread body stops reading the source', async (t) => {
  let produced = 0;
  const total = 64 * 1024 * 1024;
  async function* gen(): AsyncGenerator<Buffer> {
    yield raw({ body: '', close: false });
    const block = Buffer.alloc(64 * 1024, 0x61);
    for (; produced < total; produced += block.length) yield block;
    yield Buffer.from(`\r\n--${B}--\r\n`);
  }
  const { part } = await parseMultipart(Readable.from(gen(), { objectMode: false }), B);
  if (part.kind !== 'file') throw new Error('kind');
  await new Promise((r) => setTimeout(r, 200));
  t.ok(produced < 1024 * 1024, `only ${produced} bytes pulled while nobody reads`);
  let n = 0;
  for await (const c of part.body) n += (c as Buffer).length;
  t.equal(n, total);
});

t.test('destroying the body destroys the source', async (t) => {
  const src = new PassThrough();
  src.write(raw({ close: false }));
  const { part } = await parseMultipart(src, B);
  if (part.kind !== 'file') throw new Error('kind');
  part.body.destroy();
  await new Promise((r) => setImmediate(r));
  t.ok(src.destroyed);
});

t.test('truncation never looks like success', async (t) => {
  const msg = raw({ body: 'x'.repeat(100) });
  const end = msg.length;
  const close = `\r\n--${B}--`.length;
  // Cut inside the body and inside the closing delimiter (incl. just before its final "--").
  for (const cut of [end - close - 50, end - close, end - close + 1, end - 4, end - 3]) {
    const { part } = await parseMultipart(chunked([msg.subarray(0, cut)]), B);
    if (part.kind !== 'file') throw new Error('kind');
    await t.rejects(collect(part.body), MultipartError, `cut at ${cut} errors the body`);
  }
  t.ok((await parseFile([msg.subarray(0, end - 2)])).bytes.length === 100, 'missing final CRLF is fine');
  const headerAt = msg.indexOf('Content-Type: text/plain');
  for (const cut of [0, 5, 20, msg.indexOf('{}') + 1, headerAt + 3, headerAt + 25]) {
    await t.rejects(parseMultipart(chunked([msg.subarray(0, cut)]), B), MultipartError, `cut at ${cut} rejects`);
  }
  const loc = raw({ headers: 'Location: https://x/', body: '' });
  for (const cut of [loc.length - 8, loc.length - 4]) {
    await t.rejects(parseMultipart(chunked([loc.subarray(0, cut)]), B), MultipartError, 'truncated Location part');
  }
  const src = new PassThrough();
  const p = parseMultipart(src, B);
  src.destroy(new Error('boom'));
  await t.rejects(p, { message: 'boom' }, 'source errors pass through');
});

t.test('limits', async (t) => {
  const big = JSON.stringify({ pad: 'x'.repeat(70 * 1024) });
  await t.rejects(parseFile([raw({ json: big })]), MultipartError, 'default 64 KiB JSON cap');
  const j100 = JSON.stringify({ p: 'x'.repeat(92) });
  t.equal(j100.length, 100);
  t.ok(await parseFile([raw({ json: j100 })], { maxJsonBytes: 100 }), 'JSON exactly at the cap');
  await t.rejects(parseFile([raw({ json: j100 })], { maxJsonBytes: 99 }), MultipartError);
  // Unterminated streams must be cut off at the cap, not buffered forever.
  await t.rejects(parseFile([raw({ json: big, close: false }).subarray(0, 80 * 1024)]), /too large/);
  await t.rejects(parseFile([raw({ headers: `X-Pad: ${'y'.repeat(9000)}` })]), /header block too large/);
  await t.rejects(parseFile([raw({ headers: `X-Pad: ${'y'.repeat(300)}` })], { maxHeaderBytes: 200 }), /too large/);
  t.ok(await parseFile([raw({ headers: `X-Pad: ${'y'.repeat(8000)}` })]), 'an 8000-byte block is fine');
  await t.rejects(parseFile([raw({ preamble: 'p'.repeat(9000) })]), /preamble too large/);
  t.ok(await parseFile([raw({ preamble: '\r\n' })]), 'leading CRLF preamble');
});

t.test('malformed messages', async (t) => {
  await t.rejects(parseFile([raw({ json: '{"a":' })]), { name: 'MultipartError', message: /JSON/ });
  await t.rejects(parseFile([Buffer.from(`--${B}\r\n\r\n{}\r\n--${B}--\r\n`)]), /only one part/);
  await t.rejects(parseFile([Buffer.from(`--${B}--\r\n`)]), /no parts/);
  await t.rejects(parseFile([raw({ body: `a\r\n--${B}\r\n\r\nthird` })]), /more than two parts/);
  await t.rejects(parseFile([raw({ headers: 'Content-Type: a\r\ncontent-type: b' })]), /duplicate/);
  await t.rejects(parseFile([raw({ headers: 'no colon here' })]), /malformed/);
  const lf = Buffer.from(
    `--${B}\nContent-Type: application/json\n\n{}\n--${B}\nContent-Type: text/plain\n\nhi\n--${B}--\n`,
  );
  await t.rejects(parseFile([lf]), MultipartError, 'bare LF is refused (CRLF only, like Synapse)');
  await t.rejects(parseMultipart(chunked([raw()]), 'x'.repeat(71)), MultipartError);
  // An empty header block and a JSON part with no Content-Type are accepted (MMR does too).
  const r = await parseFile([Buffer.from(`--${B}\r\n\r\n{"x":1}\r\n--${B}\r\n\r\nraw\r\n--${B}--\r\nepilogue`)]);
  t.same(r.json, { x: 1 });
  t.equal(r.part.contentType, null);
  t.equal(r.bytes.toString(), 'raw');
});

t.test('multipartBoundary', async (t) => {
  t.equal(multipartBoundary(`multipart/mixed; boundary=${B}`), B);
  t.equal(multipartBoundary(`Multipart/MIXED;BOUNDARY="${B}"`), B);
  t.equal(multipartBoundary('multipart/mixed; charset=utf-8; boundary="a b:c"'), 'a b:c');
  t.equal(multipartBoundary('multipart/mixed; foo="x;boundary=no"; boundary=yes'), 'yes');
  t.equal(multipartBoundary('multipart/mixed'), null);
  t.equal(multipartBoundary('multipart/mixed; charset=utf-8'), null);
  t.equal(multipartBoundary('multipart/mixed; boundary='), null);
  t.equal(multipartBoundary('multipart/mixed; boundary=""'), null);
  t.equal(multipartBoundary(`multipart/mixed; boundary=${'a'.repeat(71)}`), null);
  t.equal(multipartBoundary(`multipart/mixed; boundary=${'a'.repeat(70)}`), 'a'.repeat(70));
  t.equal(multipartBoundary(`multipart/form-data; boundary=${B}`), null);
  t.equal(multipartBoundary('application/json'), null);
  t.equal(multipartBoundary(undefined), null);
});

t.test('real HTTP over loopback', async (t) => {
  const file = randomBytes(3 * 1024 * 1024 + 7);
  const boundary = newBoundary();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': `multipart/mixed; boundary=${boundary}` });
    const half = file.length >> 1;
    multipartResponse({
      boundary,
      json: {},
      file: { contentType: 'image/png', body: chunked([file.subarray(0, half), file.subarray(half)]) },
    }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/' }, resolve)
      .on('error', reject),
  );
  const b = multipartBoundary(res.headers['content-type']);
  t.equal(b, boundary);
  const { json, part } = await parseMultipart(res, b!);
  t.same(json, {});
  if (part.kind !== 'file') throw new Error('kind');
  t.equal(part.contentType, 'image/png');
  t.equal(part.contentDisposition, null);
  t.equal(sha(await collect(part.body)), sha(file));
});
