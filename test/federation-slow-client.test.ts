import t from 'tap';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { ALICE } from './helpers/repo.js';
import { startFederatingServer } from './helpers/federation.js';

// A first client that reads a remote file slowly must not hold the federation transfer back:
// the transfer finishes at the origin's speed, the file is stored and served to others, and
// the slow client still receives every byte (the rest from storage) when it reads on.

const FILE = randomBytes(64 * 1024 * 1024);
const BOUNDARY = 'sl0wcl1entb0undary';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('a stalled first client is detached and finished from storage', async (t) => {
  let v1Hits = 0;
  let peerDone!: () => void;
  const peerFinished = new Promise<void>((r) => (peerDone = r));
  const peer = createServer((req, res) => {
    if (!req.url!.startsWith('/_matrix/federation/v1/media/download/')) return res.writeHead(404).end();
    v1Hits++;
    res.writeHead(200, { 'Content-Type': `multipart/mixed; boundary=${BOUNDARY}` });
    res.write(
      `--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\nContent-Type: video/mp4\r\n\r\n`,
    );
    res.end(Buffer.concat([FILE, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]));
    res.on('finish', peerDone);
  });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  const origin = `127.0.0.1:${(peer.address() as AddressInfo).port}`;
  const b = await startFederatingServer('pglite', {
    downloads: { maxBytes: 128 * 1024 * 1024 },
    timeouts: { federationTimeoutSeconds: 20 },
  });
  t.teardown(async () => {
    await b.close();
    peer.closeAllConnections();
    peer.close();
  });
  const path = `/_matrix/client/v1/media/download/${origin}/slowvideo`;

  // The slow client: takes the first chunk, then stops reading.
  const req = request({
    agent: false,
    host: '127.0.0.1',
    port: b.repo.port,
    path,
    headers: { Host: b.name, Authorization: `Bearer ${ALICE}` },
  });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'video/mp4');
  const chunks: Buffer[] = [];
  const [first] = (await once(res, 'data')) as [Buffer];
  chunks.push(first);
  res.pause();

  // With the client stalled, the origin still finishes sending and the file is stored.
  let timer: NodeJS.Timeout | undefined;
  const finishedInTime = await Promise.race([
    peerFinished.then(() => true),
    new Promise((r) => (timer = setTimeout(() => r(false), 15_000))),
  ]);
  clearTimeout(timer);
  t.ok(finishedInTime, 'the origin finished sending while the first client read nothing');
  const other = await b.repo.fetch(path, { token: ALICE });
  t.equal(other.status, 200);
  t.equal(sha(Buffer.from(await other.arrayBuffer())), sha(FILE), 'a second client gets the stored file meanwhile');
  const heldBack = chunks.reduce((n, c) => n + c.length, 0);
  t.ok(heldBack < FILE.length, `the slow client had ${heldBack} of ${FILE.length} bytes`);

  // The slow client reads on and gets every byte, in order.
  res.on('data', (c: Buffer) => chunks.push(c));
  res.resume();
  await once(res, 'end');
  const got = Buffer.concat(chunks);
  t.equal(got.length, FILE.length);
  t.equal(sha(got), sha(FILE), 'the slow client got the whole file (the rest from storage)');
  t.equal(v1Hits, 1, 'the origin was asked once');
});
