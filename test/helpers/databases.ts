import pg from 'pg';
import { randomBytes } from 'node:crypto';

// Both database drivers run every suite: the embedded PGlite one always, real Postgres when
// MEDIA_REPO_TEST_POSTGRES names a server (CI always sets it; elsewhere it is reported as
// skipped, never silently passed).

export type DriverName = 'pglite' | 'postgres';

export const POSTGRES_URL = process.env.MEDIA_REPO_TEST_POSTGRES ?? '';

export function drivers(): { name: DriverName; skip: string | false }[] {
  return [
    { name: 'pglite', skip: false },
    { name: 'postgres', skip: POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set' },
  ];
}

/** A fresh database on the test server, dropped again by the returned function. */
export async function createTestDatabase(): Promise<{ dsn: string; drop(): Promise<void> }> {
  const name = `mr_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    dsn: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
