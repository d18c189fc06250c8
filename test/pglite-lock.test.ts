// PGlite allows one process per data directory: a second process (an import run by hand beside
// a running server) is refused with a message naming the owner, and a crashed owner's lock is
// taken over.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite } from '../src/db/pglite.js';
import { seedPglite } from './helpers/pglite-template.js';
import { migrate, MIGRATIONS_DIR } from '../src/db/migrate.js';
import { createLogger } from '../src/logging/logger.js';

const pgliteModule = new URL('../src/db/pglite.js', import.meta.url).href;

/** Tries to open `dir` from another process; returns its exit code and stderr. */
function openElsewhere(dir: string) {
  const script = `import(${JSON.stringify(pgliteModule)}).then((m) => m.openPglite(${JSON.stringify(dir)})).then(
    async (db) => { await db.close(); process.exit(0); },
    (e) => { console.error(e.message); process.exit(3); })`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
}

t.test('a second process is refused while the first holds the directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await seedPglite(join(dir, 'db'));
  const db = await openPglite(join(dir, 'db'));
  const lock = join(dir, 'db', 'media-repo.pid');
  t.equal(readFileSync(lock, 'utf8').trim(), String(process.pid), 'the lock names this process');
  const other = openElsewhere(join(dir, 'db'));
  t.equal(other.status, 3, 'the other process could not open it');
  t.match(other.stderr, new RegExp(`in use by process ${process.pid}`));
  await db.close();
  t.notOk(existsSync(lock), 'closing releases the lock');
  const after = openElsewhere(join(dir, 'db'));
  t.equal(after.status, 0, `after close another process may open it: ${after.stderr}`);
});

t.test("a crashed owner's lock is taken over", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await seedPglite(join(dir, 'db'));
  // A PID that ran and is gone: a child that exited.
  const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  writeFileSync(join(dir, 'db', 'media-repo.pid'), gone.stdout);
  const db = await openPglite(join(dir, 'db'));
  t.equal(readFileSync(join(dir, 'db', 'media-repo.pid'), 'utf8').trim(), String(process.pid), 'taken over');
  await db.close();
});

t.test('a new database is made (initdb and migrations) in a child process, logged here', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-initdb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const log = createLogger({ level: 'info', json: true, sink: (l) => lines.push(l) });
  const migrations = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.up\.sql$/.test(f))
    .sort();
  const db = await openPglite(join(dir, 'db'), 30, log);
  const applied = lines.map((l) => JSON.parse(l) as { msg: string; migration?: string });
  t.same(
    applied.filter((l) => l.msg === 'applied migration').map((l) => l.migration),
    migrations,
    'every migration, applied by the child, is in this process log',
  );
  t.equal(await migrate(db, log), 0, 'nothing left for this process to apply');
  const versions = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
  t.equal(versions.rows[0]!.n, migrations.length);
  await db.close();
  lines.length = 0;
  const again = await openPglite(join(dir, 'db'), 30, log);
  t.same(lines, [], 'reopened: no child, nothing applied');
  await again.close();
});
