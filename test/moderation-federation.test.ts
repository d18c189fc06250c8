// Quarantine across federation: two media-repo instances on loopback (A serves its own media,
// B caches it as remote media). Quarantined media is not served on A's federation endpoints;
// a quarantined remote copy on B answers 404 and is not fetched again; bytes a repo admin of B
// quarantined are not stored when another server's mxc carries them.
import t from 'tap';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { ALICE, SECRET } from './helpers/repo.js';
import { startFederatingServer, type FederatingServer } from './helpers/federation.js';
import { signRequest } from '../src/matrix/x-matrix.js';

const ADMIN = '/_matrix/media/unstable/admin';

function signedGet(
  to: FederatingServer,
  from: FederatingServer,
  path: string,
): Promise<{ status: number; body: Buffer }> {
  const [host, port] = to.name.split(':');
  const auth = signRequest({ method: 'GET', uri: path, origin: from.name, destination: to.name }, from.key);
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, headers: { Host: to.name, Authorization: auth } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const a = await startFederatingServer('pglite');
const b = await startFederatingServer('pglite');
t.teardown(async () => {
  await b.close();
  await a.close();
});

async function uploadOnA(bytes: Buffer, name = 'a.bin'): Promise<string> {
  const up = await a.repo.fetch(`/_matrix/media/v3/upload?filename=${name}`, {
    method: 'POST',
    body: new Uint8Array(bytes),
    token: ALICE,
  });
  return ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

const onB = (id: string) => b.repo.fetch(`/_matrix/client/v1/media/download/${a.name}/${id}`, { token: ALICE });

t.test("quarantined media is not served on A's federation endpoints", async (t) => {
  const id = await uploadOnA(randomBytes(2000));
  const path = `/_matrix/federation/v1/media/download/${id}`;
  t.equal((await signedGet(a, b, path)).status, 200, 'served before');
  const q = await a.repo.fetch(`${ADMIN}/quarantine/${a.name}/${id}`, { method: 'POST', token: SECRET });
  t.equal(q.status, 200);
  await q.arrayBuffer();
  const after = await signedGet(a, b, path);
  t.equal(after.status, 404);
  t.equal(JSON.parse(after.body.toString()).errcode, 'M_NOT_FOUND');
  const thumb = await signedGet(a, b, `/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32`);
  t.equal(thumb.status, 404, 'thumbnails too (no placeholder over federation)');
  const fresh = await onB(id);
  t.equal(fresh.status, 404, 'so B, asking for the first time, gets nothing');
  await fresh.arrayBuffer();
});

t.test('a quarantined remote copy on B answers 404 and is not fetched again', async (t) => {
  const bytes = randomBytes(3000);
  const id = await uploadOnA(bytes);
  const first = await onB(id);
  t.equal(first.status, 200, 'B fetched and cached it');
  await first.arrayBuffer();
  // Wait until B's copy is stored (the first answer streams while it is written).
  for (let i = 0; i < 100; i++) {
    const rows = await b.repo.repo.services.db.query('SELECT 1 FROM media WHERE origin = $1 AND media_id = $2', [
      a.name,
      id,
    ]);
    if (rows.rows.length) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const q = await b.repo.fetch(`${ADMIN}/quarantine/${a.name}/${id}`, { method: 'POST', token: SECRET });
  t.same(await q.json(), { num_quarantined: 1 });
  const again = await onB(id);
  t.equal(again.status, 404, 'quarantined on B');
  await again.arrayBuffer();
  t.equal((await signedGet(a, b, `/_matrix/federation/v1/media/download/${id}`)).status, 200, 'A still serves its own');
  // The bytes are refused on B now, from another mxc of A's too: stored as a tombstone only.
  const twin = await uploadOnA(bytes, 'twin.bin');
  t.not(twin, id, 'a second mxc on A (another name, so not the same upload)');
  const twinRes = await onB(twin);
  await twinRes.arrayBuffer();
  // The first answer streams while B stores: wait for the row.
  const rowOf = () =>
    b.repo.repo.services.db.query<{ quarantined: boolean; location: string }>(
      'SELECT quarantined, location FROM media WHERE origin = $1 AND media_id = $2',
      [a.name, twin],
    );
  let row = await rowOf();
  for (let i = 0; i < 100 && row.rows.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    row = await rowOf();
  }
  t.same(row.rows, [{ quarantined: true, location: '' }], 'B keeps no copy of quarantined bytes');
  t.equal((await onB(twin)).status, 404, 'and serves none');
});
