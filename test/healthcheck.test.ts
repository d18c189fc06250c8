import t from 'tap';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { healthTarget } from '../src/healthcheck.js';

// The Docker HEALTHCHECK command, run as the image runs it: a child process that finds the port
// in the config. A stub in this process stands in for the server (so the child is run
// asynchronously); routing.test.ts covers the real /healthz.
const script = new URL('../src/healthcheck.js', import.meta.url).pathname;
const run = (args: string[], env: NodeJS.ProcessEnv, cwd?: string) =>
  new Promise<{ status: number | null; stderr: string }>((done) => {
    const opts = { env: { ...process.env, REPO_CONFIG: '', ...env }, cwd, timeout: 30_000 };
    const child = execFile(process.execPath, [script, ...args], opts, (_err, _out, stderr) =>
      done({ status: child.exitCode, stderr }),
    );
  });

async function stub(status: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? status : 404;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

function configFor(dir: string, port: number): string {
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    [
      'repo:',
      '  bindAddress: "0.0.0.0"',
      `  port: ${port}`,
      'homeservers:',
      '  - name: example.org',
      '    csApi: http://127.0.0.1:1',
      'datastores:',
      '  - id: files',
      '    type: file',
      `    opts: { path: ${join(dir, 'media')} }`,
    ].join('\n'),
  );
  return file;
}

t.test('wildcard binds are probed on loopback, others as configured', async (t) => {
  t.same(healthTarget({ bindAddress: '0.0.0.0', port: 8000 }), { host: '127.0.0.1', port: 8000 });
  t.same(healthTarget({ bindAddress: '::', port: 8000 }), { host: '::1', port: 8000 });
  t.same(healthTarget({ bindAddress: '10.1.2.3', port: 81 }), { host: '10.1.2.3', port: 81 });
});

t.test('exit status follows /healthz at the configured port', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-health-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const up = await stub(200);
  t.teardown(() => up.server.close());
  const viaFlag = await run(['-config', configFor(dir, up.port)], {});
  t.equal(viaFlag.status, 0, viaFlag.stderr);
  const viaEnv = await run([], { REPO_CONFIG: join(dir, 'media-repo.yaml') });
  t.equal(viaEnv.status, 0, 'REPO_CONFIG, as the image sets it');

  const failing = await stub(503);
  t.teardown(() => failing.server.close());
  const r = await run(['-config', configFor(dir, failing.port)], {});
  t.equal(r.status, 1, 'a 503 is unhealthy');
  t.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${failing.port}/healthz`));

  await new Promise((res) => failing.server.close(res));
  t.equal((await run(['-config', join(dir, 'media-repo.yaml')], {})).status, 1, 'nothing listening is unhealthy');
});

t.test('without a config it writes nothing (no embedded shared secret)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-health-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await run([], {}, dir);
  t.ok(r.status === 0 || r.status === 1, `a plain exit status (${r.status})`);
  t.same(readdirSync(dir), [], 'cwd untouched');
});
