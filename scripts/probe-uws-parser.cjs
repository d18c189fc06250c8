#!/usr/bin/env node
// What the installed uWebSockets.js build does with request heads our JS never sees: large
// headers that arrive in one write or split across reads, and bodies framed by both
// Content-Length and Transfer-Encoding. Prints one line per case. Usage:
//   node scripts/probe-uws-parser.cjs [path-to-a-uws-package]
// and with UWS_HTTP_MAX_HEADERS_SIZE=65536 set, to see whether the build reads that variable.
// (Issue 13 items 2 and 3: uWS 20.30 closes such connections silently; newer builds answer
// 431 and 400 and honour the variable.)
'use strict';
const net = require('node:net');
const uws = require(process.argv[2] || 'uWebSockets.js');

const app = uws.App();
app.any('/*', (res) => {
  res.onAborted(() => {});
  res.onData((_, last) => last && res.end('answered by the app'));
});

function send(port, chunks) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.write(chunks[0]);
    if (chunks[1]) setTimeout(() => s.write(chunks[1]), 100);
    setTimeout(() => s.destroy(), 600);
  });
}

const head = (cookieBytes) => `GET / HTTP/1.1\r\nHost: x\r\nCookie: ${'a'.repeat(cookieBytes)}\r\n\r\n`;
const cases = [
  ...[3000, 6000, 20000].flatMap((n) => [
    [`${n} B cookie, one write`, [head(n)]],
    [`${n} B cookie, 100 B then the rest`, [head(n).slice(0, 100), head(n).slice(100)]],
  ]),
  [
    'Content-Length and Transfer-Encoding',
    ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ],
  [
    'Transfer-Encoding: gzip, chunked',
    ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ],
];

app.listen('127.0.0.1', 0, async (sock) => {
  const port = uws.us_socket_local_port(sock);
  console.log(`UWS_HTTP_MAX_HEADERS_SIZE=${process.env.UWS_HTTP_MAX_HEADERS_SIZE ?? '(unset)'}`);
  for (const [name, chunks] of cases) {
    const got = await send(port, chunks);
    const status = /^HTTP\/1\.1 (\d{3}[^\r]*)/.exec(got)?.[1];
    console.log(
      `${name.padEnd(40)} ${status ? `${status}${got.includes('answered by the app') ? ' (from the app)' : ' (from uWS)'}` : 'closed without an answer'}`,
    );
  }
  uws.us_listen_socket_close(sock);
  process.exit(0);
});
