import t from 'tap';
import { Worker } from 'node:worker_threads';
import { POSTGRES_URL } from './helpers/databases.js';

// pg-native's libpq binding aborts the process when used from a worker thread (it is not
// context-aware), so openPostgres picks the pure JavaScript driver off the main thread: the
// HTTP threads of issue 19 open their own pools there.

const postgresModule = new URL('../src/db/postgres.js', import.meta.url).href;
const loggerModule = new URL('../src/logging/logger.js', import.meta.url).href;

t.test(
  'Postgres opened on a worker thread: the JavaScript driver, and it answers',
  { skip: !POSTGRES_URL && 'no MEDIA_REPO_TEST_POSTGRES' },
  async (t) => {
    const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { openPostgres } = await import(workerData.postgresModule);
      const { createLogger } = await import(workerData.loggerModule);
      const lines = [];
      const log = createLogger({ level: 'info', json: true, sink: (l) => lines.push(JSON.parse(l).msg) });
      const db = await openPostgres({ dsn: workerData.dsn, maxConnections: 2, maxIdleConnections: 1 }, log);
      const r = await db.query('SELECT 41 + 1 AS n');
      await db.close();
      parentPort.postMessage({ kind: db.kind, n: Number(r.rows[0].n), lines });
    })().catch((e) => parentPort.postMessage({ error: String(e) }));`;
    const w = new Worker(code, { eval: true, workerData: { postgresModule, loggerModule, dsn: POSTGRES_URL } });
    t.teardown(() => w.terminate());
    const got = (await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    })) as { kind: string; n: number; lines: string[]; error?: string };
    t.notOk(got.error, got.error ?? 'no error');
    t.equal(got.kind, 'postgres', 'the JavaScript driver');
    t.equal(got.n, 42, 'and the query answered');
    t.ok(
      got.lines.some((l) => /pg-native is main-thread only/.test(l)),
      'the choice is logged',
    );
  },
);
