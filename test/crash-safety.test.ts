import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { drivers } from './helpers/databases.js';
import { ALICE, SERVER_NAME } from './helpers/repo.js';
import { RawConn, chunk } from './helpers/hostile-http.js';
import { stagingFiles, waitFor } from './helpers/hostile-store.js';
import {
  checkRowsAgainstBlobs,
  crashRepo,
  download,
  rawUpload,
  tryUpload,
  type Uploaded,
} from './helpers/crash-repo.js';

// kill -9 during uploads must never leave a row without its blob, a blob that does not
// match its row, an acknowledged upload that cannot be downloaded, or staging garbage that
// survives a restart (DESIGN §2: the row is inserted only after the blob is durable).

const BURST_ROUNDS = 5;
const BURST_SIZE = 16;
const STAGGER_MS = 20;

type T = Test;

for (const d of drivers()) {
  t.test(`crash safety (${d.name})`, { skip: d.skip, timeout: 120_000 }, async (t) => {
    const cr = await crashRepo(d.name);
    t.teardown(() => cr.close());
    await cr.start();
    /** Every upload that was answered 200 before some kill. */
    const acked: Uploaded[] = [];
    const first = await tryUpload(cr, randomBytes(1000));
    t.ok(first, 'the first run takes uploads');
    if (first) acked.push(first);

    // After a kill: rows against blob files (the durable state, read directly), then a
    // restart on the same config and the checks from outside: staging swept, every
    // acknowledged upload downloadable with its bytes. Rows are never deleted here, so on
    // PGlite (where reading the database means a 2-4 s open of a copy) the row check runs
    // after the last kill only and still covers the rows of every earlier round.
    async function checkAfterKill(t: T, label: string, checkRows = d.name === 'postgres'): Promise<number> {
      let rows = -1;
      if (checkRows) {
        const found = await checkRowsAgainstBlobs(cr);
        rows = found.rows;
        t.same(found.problems, [], `${label}: every one of ${rows} rows has a blob with matching size and SHA-256`);
        t.ok(rows >= acked.length, `${label}: ${rows} rows cover ${acked.length} acknowledged uploads`);
      }
      await cr.start();
      t.same(stagingFiles(cr.mediaDir), [], `${label}: the start-up sweep left .staging empty`);
      const bad: string[] = [];
      for (const u of acked) {
        const dl = await download(cr, u.mxc);
        if (dl.status !== 200 || !dl.body.equals(u.body)) bad.push(`${u.mxc}: ${dl.status}, ${dl.body.length} bytes`);
      }
      t.same(bad, [], `${label}: all ${acked.length} acknowledged uploads download with the right bytes`);
      // Warm the fresh process (JIT, pool, token lookup) so burst timings are comparable.
      const warm = await tryUpload(cr, randomBytes(1000));
      t.ok(warm, `${label}: the restarted server takes uploads`);
      if (warm) acked.push(warm);
      return rows;
    }

    t.test('(a) killed mid-body: no row, staging swept on restart', async (t) => {
      const c = await RawConn.open(cr.port);
      await c.head('POST', '/_matrix/media/v3/upload', {
        Host: SERVER_NAME,
        Authorization: `Bearer ${ALICE}`,
        'Transfer-Encoding': 'chunked',
        'Content-Type': 'application/octet-stream',
      });
      for (let i = 0; i < 32; i++) await c.write(chunk(randomBytes(64 * 1024)));
      t.ok(await waitFor(() => stagingFiles(cr.mediaDir).length > 0, 5000), 'the upload reached a staging file');
      await cr.kill9();
      c.destroy();
      t.ok(stagingFiles(cr.mediaDir).length > 0, 'the kill left a staging file behind');
      const ackedBefore = acked.length;
      const rows = await checkAfterKill(t, 'mid-body', true);
      t.equal(rows, ackedBefore, 'the half-sent upload has no row');
    });

    for (let round = 0; round < BURST_ROUNDS; round++) {
      // Spread the kills over 0-300 ms after the last byte: before, during and after commits.
      const delay = Math.min(300, Math.round(round * (300 / (BURST_ROUNDS - 1)) + Math.random() * 25));
      t.test(`(b) burst of ${BURST_SIZE} uploads, SIGKILL after ${delay} ms`, async (t) => {
        // Uploads start STAGGER_MS apart and the delay runs from the first complete body, so
        // whenever the kill lands some uploads are mid-body, some between their last byte and
        // their answer (hashing, committing, inserting), and some answered.
        const bodies = Array.from({ length: BURST_SIZE }, (_, i) => randomBytes(128 * 1024 + i * 4096));
        const ups = bodies.map((b, i) => {
          const wait = new Promise((r) => setTimeout(r, i * STAGGER_MS));
          const up = wait.then(() => rawUpload(cr, b));
          return { sent: up.then((u) => u.sent), result: up.then((u) => u.result) };
        });
        await ups[0]!.sent;
        await new Promise((r) => setTimeout(r, delay));
        await cr.kill9();
        const results = Promise.all(ups.map((u) => u.result));
        const done = (await results).filter((u): u is Uploaded => u !== null);
        acked.push(...done);
        const rows = await checkAfterKill(t, `burst ${round}`);
        // rows > acknowledged: this kill landed between a commit and its answer.
        t.comment(
          `${done.length}/${BURST_SIZE} answered 200 before the kill${rows < 0 ? '' : `; ${rows} rows for ${acked.length - 1} acknowledged`}`,
        );
      });
    }

    t.test('(c) killed right after the responses', async (t) => {
      const done: Uploaded[] = [];
      for (let i = 0; i < 5; i++) {
        const u = await tryUpload(cr, randomBytes(200_000 + i));
        t.ok(u, `upload ${i} answered 200`);
        if (u) done.push(u);
      }
      await cr.kill9();
      acked.push(...done);
      await checkAfterKill(t, 'after responses', true);
    });
  });
}
