#!/usr/bin/env node
// The README's test command: build, run every tap suite, print the plain closing line
// "N passed, N failed, N skipped" that CI reads. Arguments narrow the run to some files.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);

// Formatting and lint first: seconds, no build needed, and a failure names the fix. A run
// narrowed to some files is someone iterating on them, so only the full run (CI's) checks.
const checks = [
  ['format:check', 'files are not formatted: run `npm run format` and commit the result'],
  ['lint', 'lint errors: fix them (or, for a deliberate pattern, turn the rule off in eslint.config.js)'],
];
for (const [script, fix] of args.length ? [] : checks) {
  const check = spawnSync('npm', ['run', '--silent', script], { cwd: root, stdio: 'inherit' });
  if (check.status !== 0) {
    console.log(`npm run ${script} failed: ${fix}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

function walk(dir, ext, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, ext, out);
    else if (name.endsWith(ext)) out.push(p);
  }
  return out;
}

const files = args.length
  ? args.map((a) => a.replace(/^test\//, 'dist/test/').replace(/\.ts$/, '.js'))
  : walk(join(root, 'dist/test'), '.test.js')
      .map((p) => p.slice(root.length))
      .sort();
rmSync(join(root, '.tap/test-results'), { recursive: true, force: true });
// The shipped server loads libvips only in its worker threads, after the pools set
// VIPS_BLOCK_UNTRUSTED; a test process loads sharp in its main thread first (image helpers),
// which would start libvips without it. Set from the start, every test process decodes with
// the loaders the server has (SVG, blocked there, was seen working only in tests).
const env = { ...process.env, VIPS_BLOCK_UNTRUSTED: process.env.VIPS_BLOCK_UNTRUSTED ?? '1' };
const tap = spawnSync('npx', ['tap', ...files], { cwd: root, stdio: 'inherit', env });

// Count assertions from tap's saved TAP streams: every leaf "ok"/"not ok" line is one;
// a subtest's own summary line (it follows its children's plan) is not counted again.
let passed = 0,
  failed = 0,
  skipped = 0;
for (const f of walk(join(root, '.tap/test-results'), '.tap')) {
  let prev = '';
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = /^(\s*)(not ok|ok)\b/.exec(line);
    if (m) {
      const closesSubtest = new RegExp(`^${m[1]}    1\\.\\.\\d+`).test(prev);
      if (!closesSubtest) {
        if (/#\s*(SKIP|TODO)\b/i.test(line)) skipped++;
        else if (m[2] === 'ok') passed++;
        else failed++;
      }
    }
    if (line.trim()) prev = line;
  }
}
if (tap.status !== 0 && failed === 0) failed = 1; // a crashed suite with no parsed failure still fails
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(tap.status === 0 && failed === 0 ? 0 : 1);
