import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite } from '../../src/db/pglite.js';

// A new PGlite cluster costs an initdb of several seconds, and the suite starts well over a
// hundred servers. Each test server therefore starts from a copy of one initdb'd, empty
// cluster (made once per machine and PGlite version, then shared by every test process):
// still a real, fresh database; only initdb is not repeated. Like every new database on disk it
// is made migrated (src/db/pglite-initdb.ts), so a server's start finds its migrations applied.

// The package's exports hide its package.json; the installed copy is read from node_modules.
const pkg = new URL('../../../node_modules/@electric-sql/pglite/package.json', import.meta.url);
const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
const TEMPLATE = join(tmpdir(), `media-repo-pglite-template-${version}`);

let template: Promise<string> | null = null;

function makeTemplate(): Promise<string> {
  template ??= (async () => {
    if (existsSync(join(TEMPLATE, 'PG_VERSION'))) return TEMPLATE;
    const work = mkdtempSync(join(tmpdir(), 'media-repo-pglite-init-'));
    const db = await openPglite(join(work, 'db'));
    await db.close();
    try {
      renameSync(join(work, 'db'), TEMPLATE); // atomic: other processes see all of it or nothing
    } catch {
      // Another test process published its template first; theirs is as good.
    }
    rmSync(work, { recursive: true, force: true });
    return TEMPLATE;
  })();
  return template;
}

/** Puts a fresh, empty PGlite cluster at `target` (which must not exist yet). */
export async function seedPglite(target: string): Promise<void> {
  cpSync(await makeTemplate(), target, { recursive: true });
}
