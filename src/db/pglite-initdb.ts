import { PGlite } from '@electric-sql/pglite';
import { pgliteDb } from './pglite.js';
import { migrate } from './migrate.js';
import { createLogger } from '../logging/logger.js';

// Makes a new embedded database in a child process: PGlite's initdb, then our migrations.
// initdb grows the WASM heap to ~700 MiB, the migrations grow it further, and a WASM heap never
// shrinks. A worker thread gave the heap back when it ended, but glibc kept ~90 MiB of the
// thread's malloc arenas in the server's RSS for good (a fresh server idled at 451 MiB, a
// reopened one at 332); a process that exits returns everything, and the server then opens a
// database that is ready, as after any restart. Arguments: the data directory, then the JSON
// list of postgresql.conf settings. Applied migrations go to stdout as JSON lines.
const [dir, settings] = process.argv.slice(2);
const pg = await PGlite.create(dir!, { postgresqlconf: JSON.parse(settings!) as string[] });
const log = createLogger({ level: 'info', json: true, sink: (line) => process.stdout.write(`${line}\n`) });
const db = pgliteDb(pg, 3600, () => undefined);
await migrate(db, log);
await db.close();
