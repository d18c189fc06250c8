import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALICE, startTestRepo } from './helpers/repo.js';
import { startTestS3, until } from './helpers/s3.js';

// issue-13 item 6: /readyz must say 503 while the datastore cannot take writes, since every
// upload then fails. Tests run as root, which chmod does not stop; a regular file where the
// staging directory should be makes every create under it fail (ENOTDIR), for root too.

t.test('issue-13: /readyz answers 503 while the file datastore cannot be written', async (t) => {
  const repo = await startTestRepo('pglite');
  t.teardown(() => repo.close());
  const ready = async () => {
    const res = await fetch(`${repo.url}/readyz`);
    return { status: res.status, body: (await res.json()) as { checks?: Record<string, string> } };
  };
  const upload = () =>
    repo.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      token: ALICE,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array(randomBytes(500)),
    });
  const staging = join(repo.mediaDir, '.staging');

  const ok = await ready();
  t.equal(ok.status, 200, 'ready while writable');
  t.same(ok.body.checks, { database: 'ok', 'datastore:files': 'ok' });
  t.same(readdirSync(staging), [], 'the write probe leaves nothing behind');

  rmSync(staging, { recursive: true, force: true });
  writeFileSync(staging, 'not a directory');
  t.equal((await upload()).status, 500, 'uploads fail while the datastore cannot be written');
  const down = await ready();
  t.equal(down.status, 503, 'not ready while the datastore cannot be written');
  t.not(
    down.body.checks?.['datastore:files'],
    'ok',
    `the datastore check names the failure (${down.body.checks?.['datastore:files']})`,
  );
  t.equal(down.body.checks?.database, 'ok', 'the database is fine');
  t.equal((await fetch(`${repo.url}/healthz`)).status, 200, 'liveness is unaffected');

  rmSync(staging, { force: true });
  mkdirSync(staging);
  t.equal((await ready()).status, 200, 'ready again once writable');
  t.equal((await upload()).status, 200, 'and uploads work again');
});

t.test('issue-13: /readyz answers 503 while the S3 bucket refuses writes, and leaves no probe object', async (t) => {
  const s3 = await startTestS3();
  t.teardown(() => s3.close());
  const repo = await startTestRepo('pglite', {
    datastores: [{ id: 's3', type: 's3', forKinds: ['all'], opts: s3.opts({ timeoutSeconds: 1 }) }],
  });
  t.teardown(() => repo.close());
  // Reads answer, every PutObject has its connection dropped: a bucket that cannot be written.
  s3.fault = { kind: 'drop', when: (method) => method === 'PUT' };
  const down = await fetch(`${repo.url}/readyz`);
  const body = (await down.json()) as { checks: Record<string, string> };
  t.equal(down.status, 503, 'not ready while writes fail');
  t.not(body.checks['datastore:s3'], 'ok', `the check names the failure (${body.checks['datastore:s3']})`);
  s3.fault = null;
  t.equal((await fetch(`${repo.url}/readyz`)).status, 200, 'ready once writes go through');
  await until('the probe object is removed', async () => (await s3.keys()).length === 0);
  t.same(await s3.keys(), [], 'the bucket holds nothing');
});
