#!/usr/bin/env node
// Manual check, not part of the suite (it needs a browser): does Chromium download an export
// part from the GDPR export view page when the page is sent with our headers? Serves the page
// (exportViewPage's HTML) and one part (an attachment) with either header block, clicks the
// link in headless Chromium over the DevTools protocol, and reports whether the file arrived.
//   apt-get install chromium; npx tsc -p tsconfig.json
//   node --experimental-websocket scripts/check-view-download.mjs page    # PAGE_HEADER_BLOCK: downloads
//   node --experimental-websocket scripts/check-view-download.mjs common  # COMMON_HEADER_BLOCK: refused
// (exit 0 when the browser did what the block is meant to make it do)
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMON_HEADER_BLOCK, PAGE_HEADER_BLOCK } from '../dist/src/http/headers.js';
import { exportViewPage } from '../dist/src/archive/view-page.js';

const DEBUG_PORT = 9333;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A constant header block back as [name, value] pairs. */
function headersOf(block) {
  const [first, ...rest] = block[1].split('\r\n');
  return [[block[0], first], ...rest.map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)])];
}

const mode = process.argv[2] === 'common' ? 'common' : 'page';
const headers = headersOf(mode === 'page' ? PAGE_HEADER_BLOCK : COMMON_HEADER_BLOCK);
const part = Buffer.from('not really a tgz '.repeat(100));
const server = http.createServer((req, res) => {
  for (const [k, v] of headers) res.setHeader(k, v);
  if (req.url.endsWith('/view')) {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    const parts = [{ index: 1, size: part.length, name: 'export-part-1.tgz' }];
    res.end(exportViewPage({ entity: '@alice:example.org', parts, finished: true, error: null }));
  } else if (req.url.endsWith('/part/1')) {
    res.setHeader('Content-Type', 'application/gzip');
    res.setHeader('Content-Disposition', 'attachment; filename="export-part-1.tgz"');
    res.end(part);
  } else {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const downloads = mkdtempSync(join(tmpdir(), 'view-download-'));
const profile = mkdtempSync(join(tmpdir(), 'view-profile-'));
const chrome = spawn(
  'chromium',
  [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    `--user-data-dir=${profile}`,
    `--remote-debugging-port=${DEBUG_PORT}`,
  ],
  { stdio: 'ignore' },
);
try {
  let version = null;
  for (let i = 0; i < 100 && !version; i++) {
    version = await fetch(`http://127.0.0.1:${DEBUG_PORT}/json/version`)
      .then((r) => r.json())
      .catch(() => null);
    if (!version) await sleep(200);
  }
  if (!version) throw new Error('chromium did not start');
  const ws = new WebSocket(version.webSocketDebuggerUrl);
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let next = 0;
  const waiting = new Map();
  const logs = [];
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id) waiting.get(msg.id)?.(msg.result);
    else if (msg.method === 'Log.entryAdded') logs.push(msg.params.entry.text);
  };
  const send = (method, params = {}, sessionId) =>
    new Promise((r) => {
      const id = ++next;
      waiting.set(id, r);
      ws.send(JSON.stringify({ id, method, params, sessionId }));
    });
  await send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true });
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Log.enable', {}, sessionId);
  await send('Page.navigate', { url: `http://127.0.0.1:${server.address().port}/export/abc/view` }, sessionId);
  await sleep(1500);
  // A real click on the link (the page runs no script; none of ours is injected into it).
  const { root } = await send('DOM.getDocument', {}, sessionId);
  const { nodeId } = await send('DOM.querySelector', { nodeId: root.nodeId, selector: 'a' }, sessionId);
  const { model } = await send('DOM.getBoxModel', { nodeId }, sessionId);
  const [x1, y1, x2, , , y3] = model.content;
  for (const type of ['mousePressed', 'mouseReleased'])
    await send(
      'Input.dispatchMouseEvent',
      { type, x: (x1 + x2) / 2, y: (y1 + y3) / 2, button: 'left', clickCount: 1 },
      sessionId,
    );
  await sleep(3000);
  const got = readdirSync(downloads).some((f) => readFileSync(join(downloads, f)).equals(part));
  const csp = headers.find(([k]) => k === 'Content-Security-Policy')[1];
  console.log(JSON.stringify({ mode, csp, downloaded: got, browserSaid: logs.filter((l) => /download/i.test(l)) }));
  ws.close();
  process.exitCode = got === (mode === 'page') ? 0 : 1;
} finally {
  chrome.kill();
  server.close();
  rmSync(downloads, { recursive: true, force: true });
  setTimeout(() => rmSync(profile, { recursive: true, force: true }), 500);
}
