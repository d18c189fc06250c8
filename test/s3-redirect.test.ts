// Downloads from an S3 datastore with publicBaseUrl: authenticated endpoints answer 307 to the
// public address; legacy ones only with allow_redirect=true (and proxy the bytes otherwise).
// PGlite only: nothing here depends on the database driver.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { ALICE, ONE_THREAD, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { startTestS3 } from './helpers/s3.js';
import { RawConn } from './helpers/hostile-http.js';

const s3 = await startTestS3();
t.teardown(() => s3.close());
const r = await startTestRepo('pglite', {
  // One thread: the blob cache's content is looked at (each HTTP thread has its share).
  repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'debug', freezeUnauthenticatedMedia: false, ...ONE_THREAD },
  datastores: [
    { id: 's3', type: 's3', forKinds: ['all'], opts: s3.opts({ publicBaseUrl: 'https://cdn.example/media' }) },
  ],
});
t.teardown(() => r.close());

t.test('307 to publicBaseUrl on authenticated downloads, on legacy ones only when allowed', async (t) => {
  const body = randomBytes(4000);
  const up = await r.fetch('/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array(body), token: ALICE });
  t.equal(up.status, 200);
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const where = `https://cdn.example/media/${createHash('sha256').update(body).digest('hex')}`;

  for (const method of ['GET', 'HEAD']) {
    const authed = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, {
      method,
      token: ALICE,
      redirect: 'manual',
    });
    t.equal(authed.status, 307, `${method} authenticated: redirected`);
    t.equal(authed.headers.get('location'), where);
  }
  const legacy = await r.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/${id}`, { redirect: 'manual' });
  t.equal(legacy.status, 200, 'legacy without allow_redirect: the bytes');
  t.ok(Buffer.from(await legacy.arrayBuffer()).equals(body));
  const allowed = await r.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/${id}?allow_redirect=true`, {
    redirect: 'manual',
  });
  t.equal(allowed.status, 307, 'legacy with allow_redirect=true: redirected');
  t.equal(allowed.headers.get('location'), where);
});

t.test(
  'redirects keep the connection alive: 307s, a proxied legacy download, then a 307 again on one socket',
  async (t) => {
    const body = randomBytes(2500);
    const id = await uploadBody(r, body);
    const c = await RawConn.open(r.port);
    t.teardown(() => c.destroy());
    const authed = `/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`;
    const auth = { Host: SERVER_NAME, Authorization: `Bearer ${ALICE}` };
    const plan: [string, string, Record<string, string>, number][] = [
      ['GET', authed, auth, 307],
      ['HEAD', authed, auth, 307],
      ['GET', `/_matrix/media/v3/download/${SERVER_NAME}/${id}`, { Host: SERVER_NAME }, 200],
      ['GET', authed, auth, 307],
    ];
    for (const [i, [method, path, headers, status]] of plan.entries()) {
      await c.head(method, path, headers);
      const res = await c.response(i);
      t.equal(res?.status, status, `${method} #${i + 1} → ${status}`);
      if (status === 200) t.ok(res!.body.equals(body), 'the bytes, proxied');
    }
    t.notOk(c.closed, 'the connection is still open');
  },
);

async function uploadBody(repo: typeof r, body: Buffer): Promise<string> {
  const up = await repo.fetch('/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array(body), token: ALICE });
  return ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

t.test(
  'redirectWhenCached false (default): once the blob is hot, it comes from memory instead of the CDN',
  async (t) => {
    // The cache admits after minDownloads (5) downloads; redirected ones count too.
    const body = randomBytes(3000);
    const id = await uploadBody(r, body);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await r.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, {
        token: ALICE,
        redirect: 'manual',
      });
      statuses.push(res.status);
      if (res.status === 200) t.ok(Buffer.from(await res.arrayBuffer()).equals(body), `download ${i + 1}: the bytes`);
      else await res.arrayBuffer();
    }
    t.same(
      statuses,
      [307, 307, 307, 307, 200, 200, 200],
      'redirected while cold; the admitting download and later ones served',
    );
    t.equal(r.repo.services.blobCache.count > 0, true, 'the blob is in the cache');
  },
);

t.test('redirectWhenCached true: always the CDN, even for a cached blob', async (t) => {
  const r2 = await startTestRepo('pglite', {
    repo: { bindAddress: '127.0.0.1', port: 0, logLevel: 'info', freezeUnauthenticatedMedia: false, ...ONE_THREAD },
    downloads: { cache: { enabled: true, minDownloads: 1 } },
    datastores: [
      {
        id: 's3',
        type: 's3',
        forKinds: ['all'],
        opts: s3.opts({ publicBaseUrl: 'https://cdn.example/media', redirectWhenCached: true }),
      },
    ],
  });
  t.teardown(() => r2.close());
  const body = randomBytes(2000);
  const id = await uploadBody(r2, body);
  // A legacy download without allow_redirect proxies the bytes, and (minDownloads 1) caches them.
  const legacy = await r2.fetch(`/_matrix/media/v3/download/${SERVER_NAME}/${id}`);
  t.ok(Buffer.from(await legacy.arrayBuffer()).equals(body), 'legacy download proxied');
  t.equal(r2.repo.services.blobCache.count, 1, 'the blob is cached');
  const authed = await r2.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, {
    token: ALICE,
    redirect: 'manual',
  });
  t.equal(authed.status, 307, 'still redirected');
});
