import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createTestDatabase, drivers } from './helpers/databases.js';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { waitFor } from './helpers/hostile-store.js';
import { png } from './helpers/images.js';
import { setPurpose } from '../src/db/moderation.js';
import { getTask } from '../src/db/tasks.js';
import { MEDIA_EXPIRY, type ExpiryProgress } from '../src/tasks/expiry.js';

// Issue 15: the hourly expiry task (MMR's downloads/thumbnails/urlPreviews.expireAfterDays, and
// the sweeps that used to run on every instance) deletes exactly what is older than its cutoff:
// rows first, and a blob only when no row refers to it any more. One instance of a fleet runs
// it per period, each run a random delay after it is due.

const REMOTE = 'remote.test';
const DAY = 86_400_000;
const OLD = Date.now() - 31 * DAY; // past the 30-day cutoffs below
const RECENT = Date.now() - DAY;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const blobPath = (mediaDir: string, hash: string) => join(mediaDir, hash.slice(0, 2), hash.slice(2, 4), hash);

// A site whose two pages each name their own image (og:image), for previews with stored images.
const IMAGES: Record<string, Buffer> = { '/a.png': await png(40, 30, 1), '/b.png': await png(40, 30, 2) };
function site(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url!, 'http://x').pathname;
  const image = IMAGES[path];
  if (image) return void res.writeHead(200, { 'Content-Type': 'image/png' }).end(image);
  const m = /^\/(a|b|c)\.html$/.exec(path);
  if (!m) return void res.writeHead(404).end();
  const img = m[1] === 'c' ? '' : `<meta property="og:image" content="/${m[1]}.png">`;
  res
    .writeHead(200, { 'Content-Type': 'text/html' })
    .end(`<html><head><title>Page ${m[1]}</title>${img}</head></html>`);
}
const pages = createServer(site);
await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
t.teardown(() => {
  pages.closeAllConnections();
  pages.close();
});
const siteUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;

const expiring = {
  downloads: { expireAfterDays: 30 },
  thumbnails: { expireAfterDays: 30, pregenerate: false },
  urlPreviews: { expireAfterDays: 30, allowedNetworks: ['127.0.0.1/32'] },
  // Runs only when a test enqueues it.
  expiry: { intervalSeconds: 0, jitterSeconds: 0 },
};

const q = (r: TestRepo, sql: string, params: unknown[] = []) =>
  r.repo.services.db.query<Record<string, unknown>>(sql, params);

async function upload(r: TestRepo, bytes: Buffer, type = 'application/octet-stream'): Promise<string> {
  const res = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    token: ALICE,
    body: new Uint8Array(bytes),
    headers: { 'Content-Type': type },
  });
  if (res.status !== 200) throw new Error(`upload answered ${res.status}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function rowOf(r: TestRepo, origin: string, mediaId: string): Promise<Record<string, unknown> | undefined> {
  return (await q(r, 'SELECT * FROM media WHERE origin = $1 AND media_id = $2', [origin, mediaId])).rows[0];
}

/** Another server's media, cached here: a row of origin REMOTE on the blob of `bytes`. */
async function remoteMedia(r: TestRepo, bytes: Buffer, creationTs: number): Promise<string> {
  const id = await upload(r, bytes);
  await q(r, 'UPDATE media SET origin = $1, user_id = $2, creation_ts = $3 WHERE origin = $4 AND media_id = $5', [
    REMOTE,
    '',
    creationTs,
    SERVER_NAME,
    id,
  ]);
  return id;
}

/** A second row, of origin REMOTE, on the blob of an existing local row (dedup). */
async function remoteCopyOf(r: TestRepo, localId: string, creationTs: number): Promise<string> {
  const id = `copy${randomBytes(6).toString('hex')}`;
  await q(
    r,
    `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes, datastore_id, location, creation_ts)
     SELECT $1, $2, upload_name, content_type, '', sha256_hash, size_bytes, datastore_id, location, $3 FROM media
     WHERE origin = $4 AND media_id = $5`,
    [REMOTE, id, creationTs, SERVER_NAME, localId],
  );
  return id;
}

async function download(r: TestRepo, mediaId: string): Promise<{ status: number; body: Buffer }> {
  const res = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { token: ALICE });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function thumbnail(r: TestRepo, mediaId: string): Promise<number> {
  const res = await r.fetch(
    `/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${mediaId}?width=32&height=32&method=crop`,
    {
      token: ALICE,
    },
  );
  await res.arrayBuffer();
  return res.status;
}

async function preview(r: TestRepo, page: string): Promise<Record<string, unknown>> {
  const res = await r.fetch(`/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(siteUrl + page)}`, {
    token: ALICE,
  });
  if (res.status !== 200) throw new Error(`preview answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Enqueues one expiry run and waits for it to finish; its progress JSON. */
async function runExpiry(t: Test, r: TestRepo): Promise<ExpiryProgress> {
  const id = await r.repo.services.tasks.enqueue(MEDIA_EXPIRY, {});
  const db = r.repo.services.db;
  t.ok(await waitFor(async () => (await getTask(db, id))!.endTs !== null, 60_000, 50), 'the expiry task finished');
  const task = (await getTask(db, id))!;
  t.equal(task.error, null, 'without an error');
  return task.progress as unknown as ExpiryProgress;
}

for (const d of drivers()) {
  t.test(
    `issue-15: expiry deletes exactly what is older than its cutoffs (${d.name})`,
    { skip: d.skip, timeout: 120_000 },
    async (t) => {
      const r = await startTestRepo(d.name, expiring);
      t.teardown(() => r.close());

      // Media: remote old / recent / pinned / quarantined / sharing a local blob; local old.
      const oldBytes = randomBytes(600);
      const oldRemote = await remoteMedia(r, oldBytes, OLD);
      const recentRemote = await remoteMedia(r, randomBytes(601), RECENT);
      const pinnedRemote = await remoteMedia(r, randomBytes(602), OLD);
      await setPurpose(r.repo.services.db, REMOTE, pinnedRemote, 'pinned');
      const quarantinedRemote = await remoteMedia(r, randomBytes(603), OLD);
      await q(r, 'UPDATE media SET quarantined = TRUE WHERE origin = $1 AND media_id = $2', [
        REMOTE,
        quarantinedRemote,
      ]);
      const localBytes = randomBytes(604);
      const oldLocal = await upload(r, localBytes);
      await q(r, 'UPDATE media SET creation_ts = $1 WHERE origin = $2 AND media_id = $3', [OLD, SERVER_NAME, oldLocal]);
      const sharedRemote = await remoteCopyOf(r, oldLocal, OLD);

      // Thumbnails: one old, one recent.
      const thumbs = async (id: string) =>
        (await q(r, 'SELECT sha256_hash, creation_ts FROM thumbnails WHERE media_id = $1', [id])).rows;
      // A fresh thumbnail's row is written after the answer.
      const stored = (id: string) => waitFor(async () => (await thumbs(id)).length > 0, 10_000);
      const picture = await upload(r, await png(200, 150, 3), 'image/png');
      const freshPicture = await upload(r, await png(200, 150, 4), 'image/png');
      t.equal(await thumbnail(r, picture), 200);
      t.equal(await thumbnail(r, freshPicture), 200);
      t.ok((await stored(picture)) && (await stored(freshPicture)), 'thumbnail rows stored');
      const oldThumb = (await thumbs(picture))[0]!;
      await q(r, 'UPDATE thumbnails SET creation_ts = $1 WHERE media_id = $2', [OLD, picture]);

      // Previews: a (old, its image named nowhere else), b (old, but a newer row names its
      // image), c (recent, no image).
      const a = await preview(r, '/a.html');
      const b = await preview(r, '/b.html');
      await preview(r, '/c.html');
      const imageA = String(a['og:image']).split('/').pop()!;
      const imageB = String(b['og:image']).split('/').pop()!;
      await q(r, 'UPDATE url_previews SET creation_ts = $1 WHERE url IN ($2, $3)', [
        OLD,
        siteUrl + '/a.html',
        siteUrl + '/b.html',
      ]);
      await q(r, 'UPDATE media SET creation_ts = $1 WHERE media_id IN ($2, $3)', [OLD, imageA, imageB]);
      await q(
        r,
        `INSERT INTO url_previews (server_name, url, bucket_ts, language, preview_json, creation_ts)
       SELECT server_name, url, bucket_ts + 3600000, language, preview_json, $2 FROM url_previews WHERE url = $1`,
        [siteUrl + '/b.html', RECENT],
      );
      const imageABlob = (await rowOf(r, SERVER_NAME, imageA))!.sha256_hash as string;

      // Reservations: one expired, one not.
      for (let i = 0; i < 2; i++)
        t.equal((await r.fetch('/_matrix/media/v1/create', { method: 'POST', token: ALICE })).status, 200);
      await q(
        r,
        `UPDATE media_reservations SET expires_ts = 1 WHERE media_id = (SELECT MIN(media_id) FROM media_reservations)`,
      );

      // The invalidation log: one old row. A blob an interrupted purge left pending.
      await q(r, 'INSERT INTO media_invalidations (created_ts, payload) VALUES ($1, $2)', [
        OLD,
        '{"media":[],"hashes":[]}',
      ]);
      const leftBytes = randomBytes(605);
      const leftBlob = blobPath(r.mediaDir, sha(leftBytes));
      mkdirSync(dirname(leftBlob), { recursive: true });
      writeFileSync(leftBlob, leftBytes);
      await q(
        r,
        'INSERT INTO pending_blob_deletes (datastore_id, location, sha256_hash, size_bytes, created_ts) VALUES ($1, $2, $3, $4, $5)',
        ['files', leftBlob.slice(r.mediaDir.length + 1), sha(leftBytes), leftBytes.length, OLD],
      );

      const prog = await runExpiry(t, r);

      t.notOk(await rowOf(r, REMOTE, oldRemote), 'an old remote row goes');
      t.notOk(existsSync(blobPath(r.mediaDir, sha(oldBytes))), 'and its blob');
      t.ok(await rowOf(r, REMOTE, recentRemote), 'a recent remote row stays');
      t.ok(await rowOf(r, REMOTE, pinnedRemote), 'a pinned old remote row stays');
      t.match(await rowOf(r, REMOTE, quarantinedRemote), { location: '' }, 'a quarantined one stays as a tombstone');
      t.ok(await rowOf(r, SERVER_NAME, oldLocal), 'a local row of the same age stays');
      t.notOk(await rowOf(r, REMOTE, sharedRemote), 'an old remote row sharing a local blob goes');
      const dl = await download(r, oldLocal);
      t.equal(dl.status, 200, 'the shared blob stays: the local media still downloads');
      t.ok(dl.body.equals(localBytes));

      t.equal((await thumbs(picture)).length, 0, 'an old thumbnail row goes');
      t.notOk(existsSync(blobPath(r.mediaDir, oldThumb.sha256_hash as string)), 'and its blob');
      t.equal((await thumbs(freshPicture)).length, 1, 'a recent thumbnail stays');
      t.equal(await thumbnail(r, picture), 200, 'the old thumbnail is made again when asked for');
      t.ok(await stored(picture));
      t.ok(Number((await thumbs(picture))[0]?.creation_ts) > RECENT, 'as a new row');

      const previews = (await q(r, 'SELECT url, creation_ts FROM url_previews ORDER BY url')).rows;
      t.same(
        previews.map((p) => [p.url, Number(p.creation_ts) > OLD]),
        [
          [siteUrl + '/b.html', true],
          [siteUrl + '/c.html', true],
        ],
        'old preview rows go, newer ones stay',
      );
      t.notOk(await rowOf(r, SERVER_NAME, imageA), "an old preview's image goes with it");
      t.notOk(existsSync(blobPath(r.mediaDir, imageABlob)), 'blob included');
      t.ok(await rowOf(r, SERVER_NAME, imageB), 'an image a newer preview row still names stays');

      const reservations = (await q(r, 'SELECT expires_ts FROM media_reservations')).rows;
      t.equal(reservations.length, 1, 'the expired reservation goes');
      t.ok(Number(reservations[0]!.expires_ts) > Date.now(), 'the live one stays');
      t.equal(
        Number(
          (await q(r, 'SELECT count(*) AS n FROM media_invalidations WHERE created_ts < $1', [Date.now() - 3_600_000]))
            .rows[0]!.n,
        ),
        0,
        'invalidation log rows older than an hour go',
      );
      t.notOk(existsSync(leftBlob), 'a blob an interrupted purge left is deleted');
      t.equal(Number((await q(r, 'SELECT count(*) AS n FROM pending_blob_deletes')).rows[0]!.n), 0);

      t.match(
        prog,
        // The quarantined row's blob is purged too (its row stays as a tombstone): three.
        { remote_media: 3, thumbnails: 1, previews: 2, preview_images: 1, reservations: 1, pending_blobs: 1 },
        'the progress JSON counts each step',
      );
      t.ok(prog.invalidations >= 1);
      t.ok(
        r.logs.some((l) => l.includes('media expiry done')),
        'one log line with the counts',
      );
      const audit = (await q(r, "SELECT actor, details FROM admin_audit WHERE action = 'expire_remote_media'")).rows;
      t.match(audit, [{ actor: '@media-repo:expiry' }], 'the purge is in the audit log');

      const again = await runExpiry(t, r);
      t.match(
        again,
        { remote_media: 0, thumbnails: 0, previews: 0, preview_images: 0 },
        'a second run finds nothing left',
      );
    },
  );
}

t.test('issue-15: each run is due up to jitterSeconds late, and waits unclaimed until then', async (t) => {
  const before = Date.now();
  const r = await startTestRepo('pglite', { expiry: { intervalSeconds: 3600, jitterSeconds: 900 } });
  t.teardown(() => r.close());
  let rows: Record<string, unknown>[] = [];
  t.ok(
    await waitFor(async () => {
      rows = (await q(r, "SELECT start_ts, claimed_by, end_ts FROM background_tasks WHERE name = 'media_expiry'")).rows;
      return rows.length > 0;
    }),
    'the first look at start schedules a run',
  );
  t.equal(rows.length, 1, 'one run');
  const start = Number(rows[0]!.start_ts);
  t.ok(start >= before && start <= Date.now() + 900_000, 'due within jitterSeconds of the look');
  // A run due in more than a few seconds must not have been claimed (the runner waits for its start).
  const row = (await q(r, "SELECT start_ts, claimed_by FROM background_tasks WHERE name = 'media_expiry'")).rows[0]!;
  if (Number(row.start_ts) > Date.now() + 5000) t.equal(row.claimed_by, null, 'not claimed before it is due');
});

t.test(
  'issue-15: two instances over one database run expiry once per period',
  { skip: drivers()[1]!.skip, timeout: 120_000 },
  async (t) => {
    const db = await createTestDatabase();
    t.teardown(() => db.drop());
    const shared = mkdtempSync(join(tmpdir(), 'media-repo-expiry-'));
    t.teardown(() => rmSync(shared, { recursive: true, force: true }));
    const over = {
      ...expiring,
      expiry: { intervalSeconds: 2, jitterSeconds: 0 },
      datastores: [{ id: 'files', type: 'file', forKinds: ['all'], opts: { path: shared } }],
    };
    const a = await startTestRepo('postgres', over, {}, { postgresDsn: db.dsn });
    t.teardown(() => a.close());
    const b = await startTestRepo('postgres', over, {}, { postgresDsn: db.dsn });
    t.teardown(() => b.close());
    const planted = Date.now();
    const bytes = randomBytes(700);
    const old = await remoteMedia(a, bytes, OLD);
    const finished = async () =>
      Number(
        (
          await q(
            a,
            "SELECT count(*) AS n FROM background_tasks WHERE name = 'media_expiry' AND end_ts IS NOT NULL AND error IS NULL AND start_ts > $1",
            [planted],
          )
        ).rows[0]!.n,
      );
    t.ok(await waitFor(async () => (await finished()) >= 3, 60_000, 200), 'expiry runs period after period');
    t.notOk(await rowOf(a, REMOTE, old), 'the old remote row is purged');
    t.notOk(existsSync(blobPath(shared, sha(bytes))), 'with its blob');
    const audit = (await q(a, "SELECT details FROM admin_audit WHERE action = 'expire_remote_media'")).rows;
    t.equal(audit.length, 1, 'by one run of one instance');
    const runs = (
      await q(a, "SELECT start_ts, end_ts FROM background_tasks WHERE name = 'media_expiry' ORDER BY start_ts")
    ).rows;
    const starts = runs.map((x) => Number(x.start_ts));
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    t.ok(
      gaps.every((g) => g >= 2000),
      `no two runs started within one period (gaps ${gaps.join(', ')} ms)`,
    );
  },
);
