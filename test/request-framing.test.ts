// Issue 13 item 3: a body in a transfer coding we do not decode is refused (501), not stored
// still encoded; plain chunked bodies, in any letter case, are still taken.
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { ALICE, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { RawConn, chunk, errcode, header } from './helpers/hostile-http.js';
import { blobFiles, mediaRowCount, stagingFiles } from './helpers/hostile-store.js';

const r = await startTestRepo('pglite');
t.teardown(() => r.close());
const UPLOAD = '/_matrix/media/v3/upload';
const text = Buffer.from('a text file that a client compressed on the wire\n'.repeat(20));

async function chunkedUpload(te: string, body: Buffer) {
  const c = await RawConn.open(r.port);
  try {
    await c.head('POST', UPLOAD, {
      Host: SERVER_NAME,
      Authorization: `Bearer ${ALICE}`,
      'Content-Type': 'text/plain',
      'Transfer-Encoding': te,
    });
    await c.write(Buffer.concat([chunk(body), chunk(Buffer.alloc(0))]));
    const res = await c.response(0);
    if (!res) throw new Error(`no answer for Transfer-Encoding: ${te}`);
    return { res, closed: await c.waitClosed(res.status === 200 ? 300 : 5000) };
  } finally {
    c.destroy();
  }
}

t.test('Transfer-Encoding: gzip, chunked is refused with 501, and nothing is stored', async (t) => {
  const rows = await mediaRowCount(r.repo.services.db);
  const blobs = blobFiles(r.mediaDir).length;
  const { res, closed } = await chunkedUpload('gzip, chunked', gzipSync(text));
  t.equal(res.status, 501);
  t.equal(errcode(res), 'M_UNRECOGNIZED');
  t.match(JSON.parse(res.body.toString()).error, /gzip/);
  t.equal(header(res, 'connection'), 'close', 'the rest of the connection cannot be trusted');
  t.ok(closed, 'and it is closed');
  t.equal(await mediaRowCount(r.repo.services.db), rows, 'no media row');
  t.equal(blobFiles(r.mediaDir).length, blobs, 'no blob');
  t.same(stagingFiles(r.mediaDir), [], 'no staging file');
});

t.test('Transfer-Encoding: chunked (any case) is still taken, byte for byte', async (t) => {
  for (const te of ['chunked', 'Chunked']) {
    const { res } = await chunkedUpload(te, text);
    t.equal(res.status, 200, te);
    const id = (JSON.parse(res.body.toString()) as { content_uri: string }).content_uri.split('/').pop();
    const back = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
    t.ok(Buffer.from(await back.arrayBuffer()).equals(text), `${te}: stored as sent`);
  }
});
