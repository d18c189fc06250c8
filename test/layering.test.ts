import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// The layers of DESIGN.md, checked on the sources: handlers (src/api) reach stores only through
// pipelines, workers/ import nothing from src/, and src/ reaches workers/ only through
// workers/protocol.ts. A failure names the file and the import.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|cts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module a file imports or re-exports, resolved to a path relative to the repo root. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  // `… from '…'` (imports and re-exports, over several lines once formatted), bare
  // `import '…'`, and dynamic `import('…')`.
  for (const m of text.matchAll(/\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(?\s*['"]([^'"]+)['"]/g)) {
    const spec = (m[1] ?? m[2])!;
    if (spec.startsWith('.'))
      out.push(
        relative(root, resolve(dirname(file), spec))
          .split(sep)
          .join('/'),
      );
  }
  // new URL('../../workers/x.js', import.meta.url): how pools name their worker files.
  for (const m of text.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g)) {
    out.push(
      'url:' +
        relative(root, resolve(dirname(file), m[1]!))
          .split(sep)
          .join('/'),
    );
  }
  return out;
}

const rel = (f: string) => relative(root, f).split(sep).join('/');

t.test('handlers in src/api import no store: not src/db, src/datastores or src/cache', async (t) => {
  const files = sources(join(root, 'src/api'));
  t.ok(files.length > 10, `found the handlers (${files.length} files)`);
  const offenders: string[] = [];
  for (const f of files) {
    for (const target of importsOf(f)) {
      if (/^src\/(db|datastores|cache)\//.test(target)) offenders.push(`${rel(f)} imports ${target}`);
    }
  }
  t.same(offenders, [], 'handlers call pipelines, which own the stores');
});

t.test('workers/ import nothing from src/', async (t) => {
  const offenders: string[] = [];
  for (const f of sources(join(root, 'workers'))) {
    for (const target of importsOf(f)) if (target.startsWith('src/')) offenders.push(`${rel(f)} imports ${target}`);
  }
  t.same(offenders, []);
});

t.test('src/ reaches workers/ only through workers/protocol.ts (and pools name their worker files)', async (t) => {
  const offenders: string[] = [];
  for (const f of sources(join(root, 'src'))) {
    for (const target of importsOf(f)) {
      if (target.startsWith('url:')) continue;
      if (target.startsWith('workers/') && !/^workers\/protocol\.(js|ts)$/.test(target))
        offenders.push(`${rel(f)} imports ${target}`);
    }
  }
  t.same(offenders, []);
});
