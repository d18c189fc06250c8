import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Histogram } from 'prom-client';
import { drivers } from './helpers/databases.js';
import { ALICE, BOB, ONE_THREAD, SECRET, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { blobFiles } from './helpers/hostile-store.js';

// Group commit on Postgres (src/pipelines/steps/commit-group.ts): uploads that arrive together
// share one transaction. What a client sees must not change: every upload stored and served,
// dedup and MMR's perfect match as on the single path, a blocked hash refused alone.

const postgres = drivers().find((d) => d.name === 'postgres')!;
const ADMIN = '/_matrix/media/unstable/admin';

async function transactions(r: TestRepo): Promise<number> {
  const got = await (r.repo.services.metrics.dbQueryTime as Histogram).get();
  return got.values
    .filter((v) => v.metricName === 'media_db_query_seconds_count' && v.labels.op === 'tx')
    .reduce((a, v) => a + v.value, 0);
}

const upload = async (r: TestRepo, body: Buffer, name: string, token = ALICE) => {
  const res = await r.fetch(`/_matrix/media/v3/upload?filename=${name}`, {
    method: 'POST',
    body: new Uint8Array(body),
    token,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  return { status: res.status, body: (await res.json()) as { content_uri?: string; errcode?: string } };
};

t.test('group commit (postgres)', { skip: postgres.skip }, async (t) => {
  const r = await startTestRepo('postgres', { repo: ONE_THREAD }); // transactions are counted on one thread
  t.teardown(() => r.close());

  t.test('48 uploads at once: each stored and served, in fewer transactions than uploads', async (t) => {
    const bodies = Array.from({ length: 48 }, () => randomBytes(1024 + Math.floor(Math.random() * 4096)));
    const before = await transactions(r);
    const blobsBefore = blobFiles(r.mediaDir).length;
    const got = await Promise.all(bodies.map((b, i) => upload(r, b, `f${i}.bin`, i % 2 ? ALICE : BOB)));
    const txs = (await transactions(r)) - before;
    t.same(
      got.map((g) => g.status),
      bodies.map(() => 200),
    );
    const uris = got.map((g) => g.body.content_uri!);
    t.equal(new Set(uris).size, 48, 'distinct media IDs');
    t.ok(txs < 48, `${txs} transactions for 48 uploads`);
    t.equal(blobFiles(r.mediaDir).length - blobsBefore, 48, 'one blob each');
    for (const [i, uri] of uris.entries()) {
      const dl = await r.fetch(`/_matrix/client/v1/media/download/${uri.slice('mxc://'.length)}`, { token: ALICE });
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(bodies[i]!), `${uri} byte-identical`);
    }
  });

  t.test('the same bytes, name and uploader 12 times at once: one row (the perfect match)', async (t) => {
    const body = randomBytes(3000);
    const got = await Promise.all(Array.from({ length: 12 }, () => upload(r, body, 'same.bin')));
    t.same(new Set(got.map((g) => g.status)), new Set([200]));
    t.equal(new Set(got.map((g) => g.body.content_uri)).size, 1, 'every answer names the one media');
  });

  t.test('the same bytes under 12 names at once: 12 rows, one blob', async (t) => {
    const body = randomBytes(3000);
    const blobsBefore = blobFiles(r.mediaDir).length;
    const got = await Promise.all(Array.from({ length: 12 }, (_, i) => upload(r, body, `n${i}.bin`)));
    t.equal(new Set(got.map((g) => g.body.content_uri)).size, 12);
    t.equal(blobFiles(r.mediaDir).length - blobsBefore, 1, 'stored once');
  });

  t.test('a blocked hash in a burst is refused alone', async (t) => {
    const bad = randomBytes(2000);
    const first = await upload(r, bad, 'bad.bin');
    const id = first.body.content_uri!.split('/').pop()!;
    const q = await r.fetch(`${ADMIN}/quarantine/${SERVER_NAME}/${id}`, { method: 'POST', token: SECRET });
    t.equal(q.status, 200);
    await q.arrayBuffer();
    const others = Array.from({ length: 10 }, () => randomBytes(1500));
    const got = await Promise.all([upload(r, bad, 'again.bin'), ...others.map((b, i) => upload(r, b, `ok${i}.bin`))]);
    t.equal(got[0]!.status, 403, 'the blocked bytes');
    t.equal(got[0]!.body.errcode, 'M_FORBIDDEN');
    t.same(
      got.slice(1).map((g) => g.status),
      others.map(() => 200),
      'the others stored',
    );
  });
});
