import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The operator-facing command line, run as a real child process of the built CLI.
const cli = new URL('../src/cli.js', import.meta.url).pathname;
const run = (args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) =>
  spawnSync(process.execPath, [cli, ...args], {
    env: { ...process.env, ...env, REPO_CONFIG: env.REPO_CONFIG ?? '' },
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
  });

t.test('--version prints the package version', async (t) => {
  const r = run(['--version']);
  t.equal(r.status, 0);
  t.match(r.stdout, /^media-repo \d+\.\d+\.\d+/);
});

t.test('an unknown flag exits 2 with usage', async (t) => {
  const r = run(['--frobnicate']);
  t.equal(r.status, 2);
  t.match(r.stderr, /frobnicate/);
  t.match(r.stderr, /Usage:/);
});

t.test('an invalid config exits non-zero naming key, value and expectation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'repo:\n  port: "eighty"\n');
  for (const args of [['-config', file], ['--config', file], [`--config=${file}`]]) {
    const r = run(args);
    t.equal(r.status, 1, args.join(' '));
    t.match(r.stderr, /repo\.port/);
    t.match(r.stderr, /eighty/);
  }
  const viaEnv = run([], { REPO_CONFIG: file });
  t.equal(viaEnv.status, 1, 'REPO_CONFIG is honoured');
  t.match(viaEnv.stderr, /repo\.port/);
});

t.test('migrate applies migrations on the embedded database and exits', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    [
      'database:',
      `  embeddedPath: ${join(dir, 'db')}`,
      'homeservers:',
      '  - name: example.org',
      '    csApi: http://127.0.0.1:1',
      'datastores:',
      '  - id: files',
      '    type: file',
      `    opts: { path: ${join(dir, 'media')} }`,
    ].join('\n'),
  );
  const first = run(['migrate', '-config', file]);
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /applied migration.*0001_init/);
  const again = run(['migrate', '-config', file]);
  t.equal(again.status, 0);
  t.notMatch(again.stdout, /applied migration/, 'a second run applies nothing');
  t.match(again.stdout, /applied=0/);
});
