import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// issue-13: `npm start` ran tsc on every start (10-20 s) although `npm ci` already builds
// through `prepare`. prestart now runs scripts/build-if-stale.mjs, which compiles only when a
// source is newer than the build. Checked on a scratch tree whose "tsc" only records its runs.

const root = new URL('../..', import.meta.url).pathname; // dist/test -> repo root
const script = join(root, 'scripts/build-if-stale.mjs');

function scratchTree() {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-stale-'));
  for (const d of ['src', 'workers/image', 'test', 'dist/src', 'node_modules/typescript/bin'])
    mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'tsconfig.json'), '{}');
  writeFileSync(join(dir, 'src/cli.ts'), 'export {};\n');
  writeFileSync(join(dir, 'workers/image/render.ts'), 'export {};\n');
  // A stand-in tsc: counts its runs and "emits" the launcher, as the real one does.
  writeFileSync(
    join(dir, 'node_modules/typescript/bin/tsc'),
    `
const { appendFileSync, writeFileSync } = require('node:fs');
appendFileSync(${JSON.stringify(join(dir, 'tsc-runs'))}, 'run\\n');
writeFileSync(${JSON.stringify(join(dir, 'dist/src/launcher.cjs'))}, '');
`,
  );
  return dir;
}

const runs = (dir: string) =>
  existsSync(join(dir, 'tsc-runs'))
    ? readFileSync(join(dir, 'tsc-runs'), 'utf8').split('\n').filter(Boolean).length
    : 0;
const run = (dir: string) => spawnSync(process.execPath, [script, `--root=${dir}`], { encoding: 'utf8' });
const setTime = (path: string, secondsAgo: number) => {
  const when = new Date(Date.now() - secondsAgo * 1000);
  utimesSync(path, when, when);
};

t.test('issue-13: prestart builds only when a source is newer than the build', async (t) => {
  const dir = scratchTree();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let r = run(dir);
  t.equal(r.status, 0, r.stderr);
  t.equal(runs(dir), 1, 'no build yet: tsc runs');
  t.match(r.stderr, /no build yet/);

  for (const f of ['tsconfig.json', 'src/cli.ts', 'workers/image/render.ts']) setTime(join(dir, f), 60);
  r = run(dir);
  t.equal(r.status, 0, r.stderr);
  t.equal(runs(dir), 1, 'sources older than the build: no tsc');

  setTime(join(dir, 'dist/src/launcher.cjs'), 120);
  setTime(join(dir, 'src/cli.ts'), 30); // the newest source, so the reason names it
  r = run(dir);
  t.equal(runs(dir), 2, 'a source newer than the build: tsc runs');
  t.match(r.stderr, /src\/cli\.ts is newer than the build/);

  run(dir);
  t.equal(runs(dir), 2, 'and then it is up to date again');
  writeFileSync(join(dir, 'workers/image/new.ts'), 'export {};\n');
  run(dir);
  t.equal(runs(dir), 3, 'a new file in workers/ counts too');
});

t.test('issue-13: a stale build without TypeScript installed says what to do', async (t) => {
  const dir = scratchTree();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  rmSync(join(dir, 'node_modules/typescript'), { recursive: true });
  const r = run(dir);
  t.equal(r.status, 1);
  t.match(r.stderr, /TypeScript is not installed.*npm ci/);
});

t.test('issue-13: npm start goes through the staleness check, npm ci still builds', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts.prestart, 'node scripts/build-if-stale.mjs');
  t.match(pkg.scripts.prepare, /^tsc -p tsconfig\.json$/);
});
