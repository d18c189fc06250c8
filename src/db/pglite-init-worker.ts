import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

// Runs PGlite's initdb for a new data directory on a throwaway thread: initdb grows the WASM
// heap to ~700 MiB and a WASM heap never shrinks, but a terminated thread gives it all back.
const { dir, settings } = workerData as { dir: string; settings: string[] };
const pg = await PGlite.create(dir, { postgresqlconf: settings });
await pg.close();
parentPort!.postMessage('done');
