#!/usr/bin/env node
// `npm start` runs this first (prestart): it compiles only when a source is newer than the
// build. `npm ci` already builds through `prepare`, and a full tsc run costs 10-20 s on every
// start otherwise. tsc rewrites every output on each run, so the launcher's mtime is the time
// of the last build; any file tsconfig.json includes (or tsconfig.json itself) newer than it
// means the build is stale. `node scripts/build-if-stale.mjs --why` prints the reason only.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

// --root=DIR: another checkout (test/build-if-stale.test.ts runs it on a scratch tree).
const rootArg = process.argv.find((a) => a.startsWith('--root='));
const root = rootArg ? rootArg.slice('--root='.length) : new URL('..', import.meta.url).pathname;
const BUILT = join(root, 'dist/src/launcher.cjs');
const SOURCE_DIRS = ['src', 'workers', 'test'];
const SOURCE_FILE = /\.(c|m)?ts$/;

/** The newest source file (what tsconfig.json's include covers) and its mtime. */
function newestSource() {
  let newest = { path: join(root, 'tsconfig.json'), mtimeMs: statSync(join(root, 'tsconfig.json')).mtimeMs };
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (SOURCE_FILE.test(entry.name)) {
        const m = statSync(p).mtimeMs;
        if (m > newest.mtimeMs) newest = { path: p, mtimeMs: m };
      }
    }
  };
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(join(root, d));
  return newest;
}

function staleReason() {
  if (!existsSync(BUILT)) return 'no build yet (dist/src/launcher.cjs is missing)';
  const built = statSync(BUILT).mtimeMs;
  const src = newestSource();
  return src.mtimeMs > built ? `${relative(root, src.path)} is newer than the build` : null;
}

const reason = staleReason();
if (process.argv.includes('--why')) {
  console.log(reason ?? 'the build is up to date');
  process.exit(0);
}
if (reason) {
  console.error(`media-repo: building (${reason})`);
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  if (!existsSync(tsc)) {
    console.error(
      'media-repo: TypeScript is not installed (npm prune --omit=dev removes it): run `npm ci`, or start the last build with `node dist/src/launcher.cjs`',
    );
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
