// Downloads from an S3 datastore with publicBaseUrl: authenticated endpoints answer 307 to the
// public address; legacy ones only with allow_redirect=true (and proxy the bytes otherwise).
// PGlite only: nothing here depends on the database driver.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { ALICE, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { startTestS3 } from './helpers/s3.js';

const s3 = await startTestS3();
t.teardown(() => s3.close());
const r = await startTestRepo('pglite', {
  repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'debug', freezeUnauthenticatedMedia: false },
  datastores: [{ id: 's3', type: 's3', forKinds: ['all'], opts: s3.opts({ publicBaseUrl: 'https://cdn.example/media' }) }],
});
t.teardown(() => r.close());

t.test('307 to publicBaseUrl on authenticated downloads, on legacy ones only when allowed', async (t) => {
  const body = randomBytes(4000);
  const up = await r.fetch('/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array(body), token: ALICE });
  t.equal(up.status, 200);
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const where = `https://cdn.example/media/${createHash('sha256').update(body).digest('hex')}`;

  for (const method of ['GET', 'HEAD']) {
    const authed = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { method, token: ALICE, redirect: 'manual' });
    t.equal(authed.status, 307, `${method} authenticated: redirected`);
    t.equal(authed.headers.get('location'), where);
  }
  const legacy = await r.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/${id}`, { redirect: 'manual' });
  t.equal(legacy.status, 200, 'legacy without allow_redirect: the bytes');
  t.ok(Buffer.from(await legacy.arrayBuffer()).equals(body));
  const allowed = await r.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/${id}?allow_redirect=true`, { redirect: 'manual' });
  t.equal(allowed.status, 307, 'legacy with allow_redirect=true: redirected');
  t.equal(allowed.headers.get('location'), where);
});
