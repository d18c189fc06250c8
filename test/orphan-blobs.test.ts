import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createTestDatabase, drivers } from './helpers/databases.js';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { waitFor } from './helpers/hostile-store.js';
import { SUSPICIOUS_ORPHANS } from '../src/tasks/orphan-blobs.js';

// issue-13 item 5: kill -9 between an upload's blob commit and its row's COMMIT leaves a blob
// no row references. The collector removes such blobs once they are old, counts them in
// media_orphan_blobs_removed_total, and keeps referenced blobs, young blobs and files that
// are not content-addressed blobs of ours. One instance of a fleet runs it per period.

const HOUR_AGO = (Date.now() - 2 * 3600_000) / 1000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const blobPath = (mediaDir: string, hash: string) => join(mediaDir, hash.slice(0, 2), hash.slice(2, 4), hash);

/** A blob file as a commit killed before its row's COMMIT leaves it; `old` backdates it 2 h. */
function plantBlob(mediaDir: string, old: boolean): string {
  const bytes = randomBytes(700);
  const path = blobPath(mediaDir, sha(bytes));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  if (old) utimesSync(path, HOUR_AGO, HOUR_AGO);
  return path;
}

async function removedCount(repo: TestRepo, datastore: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${repo.repo.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`media_orphan_blobs_removed_total{datastore="${datastore}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Orphan-collection runs that finished after `since`. */
async function finishedRunsSince(repo: TestRepo, since: number): Promise<number> {
  const r = await repo.repo.services.db.query<{ n: unknown }>(
    "SELECT count(*) AS n FROM background_tasks WHERE name = 'orphan_blobs' AND end_ts IS NOT NULL AND error IS NULL AND start_ts > $1",
    [since],
  );
  return Number(r.rows[0]!.n);
}

const collector = { minAgeSeconds: 3600, intervalSeconds: 1 };
const metrics = { enabled: true, bindAddress: '127.0.0.1', port: 0 };

for (const d of drivers()) {
  t.test(
    `issue-13: orphan blobs are collected, referenced and young ones kept (${d.name})`,
    { skip: d.skip, timeout: 120_000 },
    async (t) => {
      const repo = await startTestRepo(d.name, { metrics, orphanBlobs: collector });
      t.teardown(() => repo.close());
      const bytes = randomBytes(900);
      const up = await repo.fetch('/_matrix/media/v3/upload', {
        method: 'POST',
        token: ALICE,
        body: new Uint8Array(bytes),
      });
      t.equal(up.status, 200);
      const mediaId = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const referenced = blobPath(repo.mediaDir, sha(bytes));
      utimesSync(referenced, HOUR_AGO, HOUR_AGO); // old, but a row points at it

      const planted = Date.now();
      const orphan = plantBlob(repo.mediaDir, true);
      const young = plantBlob(repo.mediaDir, false);
      const foreign = join(repo.mediaDir, 'notes', 'readme.txt');
      mkdirSync(dirname(foreign), { recursive: true });
      writeFileSync(foreign, 'not a blob of ours');
      utimesSync(foreign, HOUR_AGO, HOUR_AGO);

      t.ok(
        await waitFor(async () => (await finishedRunsSince(repo, planted)) >= 2, 60_000, 200),
        'collection ran (twice) after the blobs appeared',
      );
      t.notOk(existsSync(orphan), 'the old blob no row references is removed');
      t.equal(await removedCount(repo, 'files'), 1, 'and counted, once');
      t.ok(existsSync(young), 'a young unreferenced blob is kept (its row may be on its way)');
      t.ok(existsSync(referenced), 'an old referenced blob is kept');
      t.ok(existsSync(foreign), 'a file that is not a content-addressed blob is never touched');
      const dl = await repo.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { token: ALICE });
      t.ok(Buffer.from(await dl.arrayBuffer()).equals(bytes), 'the referenced media still downloads');
    },
  );
}

t.test(
  'issue-13: two instances over one database collect once per period',
  { skip: drivers()[1]!.skip, timeout: 120_000 },
  async (t) => {
    const db = await createTestDatabase();
    t.teardown(() => db.drop());
    const shared = mkdtempSync(join(tmpdir(), 'media-repo-orphans-'));
    t.teardown(() => rmSync(shared, { recursive: true, force: true }));
    const over = {
      metrics,
      orphanBlobs: { minAgeSeconds: 3600, intervalSeconds: 2 },
      datastores: [{ id: 'files', type: 'file', forKinds: ['all'], opts: { path: shared } }],
    };
    const a = await startTestRepo('postgres', over, {}, { postgresDsn: db.dsn });
    t.teardown(() => a.close());
    const b = await startTestRepo('postgres', over, {}, { postgresDsn: db.dsn });
    t.teardown(() => b.close());
    const planted = Date.now();
    const orphan = plantBlob(shared, true);
    t.ok(
      await waitFor(async () => (await finishedRunsSince(a, planted)) >= 3, 60_000, 200),
      'collection runs period after period',
    );
    t.notOk(existsSync(orphan), 'the orphan is removed');
    t.equal(
      (await removedCount(a, 'files')) + (await removedCount(b, 'files')),
      1,
      'by one of the two instances, once',
    );
    const runs = await a.repo.services.db.query<{ start_ts: unknown }>(
      "SELECT start_ts FROM background_tasks WHERE name = 'orphan_blobs' ORDER BY start_ts",
    );
    const starts = runs.rows.map((r) => Number(r.start_ts));
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    t.ok(
      gaps.every((g) => g >= 2000),
      `no two runs started within one period (gaps ${gaps.join(', ')} ms)`,
    );
  },
);

t.test(
  'issue-13: a datastore where many blobs have no row is left alone and reported (a renamed id, a shared bucket)',
  { timeout: 120_000 },
  async (t) => {
    const repo = await startTestRepo('pglite', { metrics, orphanBlobs: collector });
    t.teardown(() => repo.close());
    // Planted between two runs: a run already listing the directory could see only some of them
    // (not enough to be refused) and remove those (seen under load in CI-like runs).
    const running = async () =>
      Number(
        (
          await repo.repo.services.db.query<{ n: unknown }>(
            "SELECT count(*) AS n FROM background_tasks WHERE name = 'orphan_blobs' AND end_ts IS NULL AND claimed_by IS NOT NULL",
          )
        ).rows[0]!.n,
      );
    await waitFor(async () => (await running()) === 0, 10_000, 10);
    const planted = Date.now();
    const orphans = Array.from({ length: SUSPICIOUS_ORPHANS + 1 }, () => plantBlob(repo.mediaDir, true));
    const failedRun = async () =>
      Number(
        (
          await repo.repo.services.db.query<{ n: unknown }>(
            "SELECT count(*) AS n FROM background_tasks WHERE name = 'orphan_blobs' AND end_ts IS NOT NULL AND error IS NOT NULL AND start_ts > $1",
            [planted],
          )
        ).rows[0]!.n,
      );
    t.ok(
      await waitFor(async () => (await failedRun()) >= 1, 60_000, 200),
      'a collection ran after the blobs appeared, and failed',
    );
    t.ok(
      orphans.every((p) => existsSync(p)),
      `none of the ${orphans.length} unreferenced blobs is removed`,
    );
    t.equal(await removedCount(repo, 'files'), 0, 'nothing counted as removed');
    t.ok(
      repo.logs.some(
        (l) =>
          (l.includes('orphan blob collection refused') && l.includes(`unreferenced=${orphans.length}`)) ||
          l.includes(`"unreferenced":${orphans.length}`),
      ),
      'the log names the datastore problem and the count',
    );
  },
);
