// A server of ours started inside the bench process (its pipelines called through its services,
// its RSS this process's), over a fresh database: PGlite in `dir`, or a new database in the
// `postgres` DSN's server. Background schedules are off: the bench runs what it measures itself.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import yaml from 'js-yaml';
import { ROOT, freshPostgresDatabase } from './repo.mjs';

const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', 'src', p)).href);

/** `config` is merged over the defaults below (its datastores, and keys such as downloads). */
export async function startInProcessRepo(dir, postgres, host, config) {
  const { startMediaRepo } = await dist('main.js');
  const { loadConfig } = await dist('config/load.js');
  const { createLogger } = await dist('logging/logger.js');
  mkdirSync(dir, { recursive: true });
  const db = postgres ? await freshPostgresDatabase(postgres) : null;
  const doc = {
    repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'warn', shutdownGraceSeconds: 0 },
    database: { postgres: db?.dsn ?? '', embeddedPath: join(dir, 'db') },
    homeservers: [{ name: host, csApi: 'http://127.0.0.1:9/' }],
    sharedSecretAuth: { enabled: true, token: randomBytes(16).toString('hex') },
    expiry: { intervalSeconds: 0, jitterSeconds: 0 },
    orphanBlobs: { intervalSeconds: 0 },
    ...config,
  };
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(file, yaml.dump(doc));
  const log = createLogger({ level: 'error', json: false, sink: (l) => console.error(`  server: ${l}`) });
  const repo = await startMediaRepo({ config: await loadConfig(file), log, port: 0 });
  return {
    repo,
    database: db ? 'postgres' : 'pglite',
    async stop() {
      await repo.stop(1000);
      await db?.drop().catch((e) => console.error(`could not drop the bench database: ${e.message}`));
    },
  };
}
