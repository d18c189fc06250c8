import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { defaultConfig } from '../src/config/defaults.js';
import { MIGRATIONS_DIR } from '../src/db/migrate.js';

// No Docker engine runs where the tests do, so the image is never built here. This checks what
// can be checked without one: the stages, the user, that every COPY has something to copy, and
// that what the server reads at run time is in the image. It is a lint, not a build.
const root = new URL('../..', import.meta.url).pathname; // dist/test -> repo root
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as {
  compilerOptions: { outDir: string };
};

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions with continuation lines joined and comments dropped; stage counts FROM lines. */
function parse(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) continue;
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(pending) ?? [];
    pending = '';
    if (op.toUpperCase() === 'FROM') stage++;
    out.push({ op: op.toUpperCase(), args, stage });
  }
  return out;
}

const all = parse(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const froms = all.filter((i) => i.op === 'FROM');
const runtime = all.filter((i) => i.stage === froms.length - 1);
const build = all.filter((i) => i.stage === 0);
const args = (list: Instruction[], op: string) => list.filter((i) => i.op === op).map((i) => i.args);
const execForm = (s: string) => JSON.parse(s) as string[];
const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

t.test('two stages on node:20-bookworm-slim: a named build stage, then the runtime', async (t) => {
  t.equal(froms.length, 2);
  t.equal(froms[0]!.args, 'node:20-bookworm-slim AS build');
  t.equal(froms[1]!.args, 'node:20-bookworm-slim');
});

t.test('the runtime runs as a user other than root', async (t) => {
  const users = args(runtime, 'USER');
  t.equal(users.length, 1);
  t.notOk(['root', '0', '0:0'].includes(users[0]!), `USER ${users[0]}`);
});

t.test('build-context COPYs name files that exist and are not docker-ignored', async (t) => {
  const copies = all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
  t.ok(copies.length > 0);
  for (const c of copies) {
    for (const src of c.args.split(/\s+/).slice(0, -1)) {
      t.ok(existsSync(join(root, src)), `${src} exists`);
      t.notOk(ignored.includes(src.split('/')[0]!), `${src} is not in .dockerignore`);
    }
  }
});

t.test('the runtime copies from the build stage only what the build produces', async (t) => {
  const fromBuild = args(runtime, 'COPY')
    .filter((a) => a.startsWith('--from=build'))
    .map((a) => a.split(/\s+/)[1]!);
  t.same(fromBuild.sort(), ['/app/dist', '/app/node_modules']);
  t.same(args(build, 'WORKDIR'), ['/app']);
  t.equal(tsconfig.compilerOptions.outDir, 'dist', 'tsc writes dist/');
  const steps = args(build, 'RUN').join(' ');
  t.match(steps, /npm ci\b/);
  t.match(steps, /tsc -p tsconfig\.json/);
  t.match(steps, /npm prune --omit=dev/, 'dev dependencies stay out of the image');
  t.ok(ignored.includes('node_modules') && ignored.includes('dist'), 'local builds never reach the context');
});

t.test('what the server reads at run time is in the image', async (t) => {
  const plain = args(runtime, 'COPY')
    .filter((a) => !a.startsWith('--from'))
    .flatMap((a) => a.split(/\s+/).slice(0, -1));
  t.ok(plain.includes('package.json'), 'package.json ("type": "module", version)');
  t.ok(plain.includes(relative(root, MIGRATIONS_DIR).replace(/\/$/, '')), 'migrations/ beside dist/');
  t.ok(plain.includes('assets'), 'assets/ (the bundled oEmbed providers) beside dist/');
});

t.test('tini is PID 1 and runs the launcher, which the build outputs', async (t) => {
  const apt = args(runtime, 'RUN').join(' ');
  for (const p of ['libpq5', 'libjemalloc2', 'tini']) t.match(apt, new RegExp(`\\b${p}\\b`), `installs ${p}`);
  const entry = execForm(args(runtime, 'ENTRYPOINT')[0]!);
  t.equal(entry[0], '/usr/bin/tini');
  t.equal(entry.at(-1), '--');
  const cmd = execForm(args(runtime, 'CMD')[0]!);
  t.same(cmd, ['node', `/app/${pkg.bin['media-repo']}`]);
  t.ok(existsSync(join(root, pkg.bin['media-repo']!)), `${pkg.bin['media-repo']} is built`);
});

t.test('environment, volume and ports', async (t) => {
  const env = args(runtime, 'ENV').join(' ');
  t.match(env, /REPO_CONFIG=\/data\/media-repo\.yaml/);
  t.match(env, /LD_PRELOAD=\S*libjemalloc\.so\.2/);
  t.match(env, /NODE_ENV=production/);
  t.same(args(runtime, 'VOLUME'), ['["/data"]']);
  t.equal(args(runtime, 'WORKDIR').at(-1), '/data', 'relative data paths land on the volume');
  const ports = args(runtime, 'EXPOSE').join(' ').split(/\s+/);
  t.ok(ports.includes(String(defaultConfig().repo.port)), 'the default repo.port');
});

t.test('HEALTHCHECK runs the built probe', async (t) => {
  const hc = args(runtime, 'HEALTHCHECK');
  t.equal(hc.length, 1);
  const cmd = execForm(/CMD\s+(\[.*\])$/.exec(hc[0]!)?.[1] ?? '[]');
  t.equal(cmd[0], 'node');
  t.match(cmd[1], /^\/app\/dist\//);
  t.ok(existsSync(join(root, cmd[1]!.replace(/^\/app\//, ''))), `${cmd[1]} is built`);
});
