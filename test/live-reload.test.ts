import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ALICE, startTestRepo } from './helpers/repo.js';

// A running server picks up config edits without a restart, and keeps the old config when
// an edit does not validate.
async function until(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

t.test('live reload of a running server (pglite)', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  const file = join(r.dir, 'media-repo.yaml');
  const size = async () =>
    ((await (await r.fetch('/_matrix/client/v1/media/config', { token: ALICE })).json()) as Record<string, number>)[
      'm.upload.size'
    ];
  t.equal(await size(), 104857600);

  const doc = yaml.load(readFileSync(file, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  doc.uploads = { ...doc.uploads, maxBytes: 4096 };
  doc.homeservers = [...doc.homeservers, { name: 'second.test', csApi: r.hs.url }];
  writeFileSync(file, yaml.dump(doc));
  t.ok(await until(async () => (await size()) === 4096), 'uploads.maxBytes applied live');
  const big = await r.fetch('/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array(5000), token: ALICE });
  t.equal(big.status, 413, 'the new limit is enforced');
  await big.arrayBuffer();
  const second = await r.fetch('/_matrix/client/v1/media/config', { token: ALICE, host: 'second.test' });
  t.equal(second.status, 200, 'a homeserver added by the edit is served');
  await second.arrayBuffer();

  writeFileSync(file, 'uploads: [this is: not valid');
  await new Promise((res) => setTimeout(res, 1500));
  t.equal(await size(), 4096, 'a broken edit leaves the previous config in force');
  t.ok(
    r.logs.some((l) => /config reload rejected/.test(l)),
    'and says so in the log',
  );

  doc.repo = { ...doc.repo, port: 1 };
  writeFileSync(file, yaml.dump(doc));
  t.ok(
    await until(async () => r.logs.some((l) => /only apply after a restart/.test(l) && /repo\.port/.test(l))),
    'restart-only keys are named',
  );
});
