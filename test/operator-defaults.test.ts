// Issue 13 items 12 and 15: defaults an operator meets with a short config file. A file without
// `datastores` stores media where the no-config start does (./data/media) and says so; without an
// `uploads` section a 12-byte file is accepted (minBytes defaults to 1; the spec sets no minimum).
// test/helpers/repo.ts always sets uploads.minBytes, so this test writes its own file.
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { loadConfig } from '../src/config/load.js';
import { defaultConfig } from '../src/config/defaults.js';
import { startMediaRepo } from '../src/main.js';
import { createLogger } from '../src/logging/logger.js';
import { ALICE, SERVER_NAME } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { seedPglite } from './helpers/pglite-template.js';

/** Every file below `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

t.test('uploads.minBytes defaults to 1', async (t) => {
  t.equal(defaultConfig().uploads.minBytes, 1);
});

t.test('a config without datastores or uploads: media in ./data/media, small files accepted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-defaults-'));
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  let repo: Awaited<ReturnType<typeof startMediaRepo>> | null = null;
  t.teardown(async () => {
    await repo?.stop(2000);
    await hs.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await seedPglite(join(dir, 'db'));
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    yaml.dump({
      repo: { bindAddress: '127.0.0.1', port: 0 },
      database: { embeddedPath: join(dir, 'db') },
      homeservers: [{ name: SERVER_NAME, csApi: hs.url }],
    }),
  );
  const loaded = await loadConfig(file, { cwd: dir });
  const mediaDir = join(dir, 'data/media');
  t.same(
    loaded.global.datastores,
    [{ id: 'default', type: 'file', enabled: true, forKinds: ['all'], opts: { path: mediaDir } }],
    'the no-config datastore',
  );
  t.same(
    loaded.warnings,
    [
      `datastores: none configured; media is stored in the file datastore "default" at ${mediaDir} (as with no config file)`,
    ],
    'and a line saying so',
  );

  const logs: string[] = [];
  repo = await startMediaRepo({
    config: loaded,
    log: createLogger({ level: 'info', json: false, sink: (l) => logs.push(l) }),
    port: 0,
  });
  const headers = { 'X-Forwarded-Host': SERVER_NAME, Authorization: `Bearer ${ALICE}`, 'Content-Type': 'text/plain' };
  const up = await repo.request({
    method: 'POST',
    url: '/_matrix/media/v3/upload?filename=hello.txt',
    body: 'hello, world',
    headers,
  });
  t.equal(up.status, 200, 'a 12-byte file is accepted');
  const mxc = ((await up.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
  t.equal(filesUnder(mediaDir).length, 1, 'stored under ./data/media');
  const down = await repo.request({ url: `/_matrix/client/v1/media/download/${mxc}`, headers });
  t.equal(await down.text(), 'hello, world');
});
