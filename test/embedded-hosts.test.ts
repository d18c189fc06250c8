import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { loadConfig, EMBEDDED_SECRET_FILE } from '../src/config/load.js';
import { startMediaRepo } from '../src/main.js';
import { createLogger } from '../src/logging/logger.js';
import { seedPglite } from './helpers/pglite-template.js';
import { requestRaw } from './helpers/auth-hosts.js';

// issue-13: with no config file the README says the server answers on 127.0.0.1:8000 for the
// embedded homeserver "localhost"; a browser or curl at http://127.0.0.1:8000 sends
// `Host: 127.0.0.1:8000` and got 502. In that mode (only) the loopback names are the same
// homeserver; a config file names its homeservers exactly.

const quiet = createLogger({ level: 'error', json: false, sink: () => undefined });
const LOOPBACK_HOSTS = [
  'localhost',
  'localhost:8000',
  '127.0.0.1',
  '127.0.0.1:8000',
  '[::1]',
  '[::1]:8000',
  'LOCALHOST:1234',
];

t.test(
  'issue-13: no-config mode serves localhost, 127.0.0.1 and [::1] (any port) as the embedded homeserver',
  async (t) => {
    const cwd = mkdtempSync(join(tmpdir(), 'media-repo-embedded-'));
    await seedPglite(join(cwd, 'data/db'));
    const config = await loadConfig(undefined, { cwd });
    const repo = await startMediaRepo({ config, log: quiet, port: 0 });
    t.teardown(async () => {
      await repo.stop({ graceMs: 0 });
      rmSync(cwd, { recursive: true, force: true });
    });
    const secret = readFileSync(join(cwd, EMBEDDED_SECRET_FILE), 'utf8').trim();
    for (const host of LOOPBACK_HOSTS) {
      const res = await requestRaw(repo, {
        path: '/_matrix/media/v3/config',
        host,
        headers: { Authorization: `Bearer ${secret}` },
      });
      t.equal(res.status, 200, `Host: ${host}`);
    }
    const other = await requestRaw(repo, {
      path: '/_matrix/media/v3/config',
      host: 'example.org',
      headers: { Authorization: `Bearer ${secret}` },
    });
    t.equal(other.status, 502, 'another name is still not served');
    // What it serves under those names is the one homeserver "localhost" (its mxc URIs say so).
    const up = await requestRaw(repo, {
      method: 'POST',
      path: '/_matrix/media/v3/upload',
      host: '127.0.0.1:8000',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'text/plain', 'Content-Length': '200' },
      body: 'hello'.repeat(40),
    });
    t.equal(up.status, 200, up.body.toString());
    t.match(JSON.parse(up.body.toString()).content_uri, /^mxc:\/\/localhost\//);
  },
);

t.test('issue-13: a config file does not get the loopback aliases', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-embedded-cfg-'));
  await seedPglite(join(dir, 'db'));
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    yaml.dump({
      repo: { bindAddress: '127.0.0.1', port: 0, shutdownGraceSeconds: 0 },
      database: { embeddedPath: join(dir, 'db') },
      homeservers: [{ name: 'localhost', csApi: 'http://localhost:8008' }],
      sharedSecretAuth: { enabled: true, token: 'secret' },
      datastores: [{ id: 'files', type: 'file', forKinds: ['all'], opts: { path: join(dir, 'media') } }],
    }),
  );
  const repo = await startMediaRepo({ config: await loadConfig(file), log: quiet, port: 0 });
  t.teardown(async () => {
    await repo.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const ask = async (host: string) =>
    (await requestRaw(repo, { path: '/_matrix/media/v3/config', host, headers: { Authorization: 'Bearer secret' } }))
      .status;
  t.equal(await ask('localhost:8000'), 200, 'the configured name, any port');
  t.equal(await ask('127.0.0.1:8000'), 502, 'a name the config does not list');
  t.equal(await ask('[::1]'), 502);
});
