import t from 'tap';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { png } from './helpers/images.js';

// Real traffic, then a scrape: MMR's metric names are there and each counter moved by exactly
// what the traffic did (labels: route name, configured host, method, status code).

type Samples = Map<string, number>;

function parse(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(repo: TestRepo): Promise<{ text: string; samples: Samples }> {
  const text = await (await fetch(`http://127.0.0.1:${repo.repo.metricsPort}/metrics`)).text();
  return { text, samples: parse(text) };
}

/** The value of one series, 0 when it does not exist yet. */
function value(s: Samples, name: string, labels: Record<string, string>): number {
  for (const [k, v] of s) {
    if (k === name && Object.keys(labels).length === 0) return v;
    if (!k.startsWith(name + '{')) continue;
    const body = k.slice(name.length + 1, -1);
    const have = Object.fromEntries(
      body.split('",').map((p) => {
        const [lk, lv] = p.split('="');
        return [lk, lv!.replace(/"$/, '')];
      }),
    );
    if (
      Object.entries(labels).every(([lk, lv]) => have[lk] === lv) &&
      Object.keys(have).length === Object.keys(labels).length
    )
      return v;
  }
  return 0;
}

t.test('counters move with real traffic', async (t) => {
  const repo = await startTestRepo('pglite', { metrics: { enabled: true, bindAddress: '127.0.0.1', port: 0 } });
  t.teardown(() => repo.close());
  const before = (await scrape(repo)).samples;
  const host = SERVER_NAME;

  const image = await png(640, 480);
  const up = await repo.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(image),
    headers: { 'Content-Type': 'image/png' },
    token: ALICE,
  });
  t.equal(up.status, 200);
  const mediaId = String(((await up.json()) as { content_uri: string }).content_uri)
    .split('/')
    .pop()!;
  for (let i = 0; i < 2; i++) {
    const dl = await repo.fetch(`/_matrix/client/v1/media/download/${host}/${mediaId}`, { token: ALICE });
    t.equal(dl.status, 200);
    t.equal(Buffer.from(await dl.arrayBuffer()).length, image.length);
  }
  const th = await repo.fetch(`/_matrix/client/v1/media/thumbnail/${host}/${mediaId}?width=96&height=96&method=scale`, {
    token: ALICE,
  });
  t.equal(th.status, 200);
  await th.arrayBuffer();
  const missing = await repo.fetch(`/_matrix/client/v1/media/download/${host}/doesnotexist`, { token: ALICE });
  t.equal(missing.status, 404);
  await missing.arrayBuffer();
  // A Host that is no configured homeserver: counted as invalid, its name never a label.
  const odd = await repo.fetch(`/_matrix/client/v1/media/download/${host}/${mediaId}`, {
    token: ALICE,
    host: 'evil.example',
  });
  await odd.arrayBuffer();
  // A health probe by IP: host-less, so an ordinary request under the unknown-host label.
  (await fetch(`${repo.url}/readyz`)).body?.cancel();

  const { text, samples: after } = await scrape(repo);
  const delta = (name: string, labels: Record<string, string>) =>
    value(after, name, labels) - value(before, name, labels);
  for (const name of [
    'media_http_requests_total',
    'media_invalid_http_requests_total',
    'media_http_responses_total',
    'media_http_response_time_seconds',
    'media_cache_hits_total',
    'media_cache_misses_total',
    'media_cache_evictions_total',
    'media_thumbnails_generated_total',
    'media_downloaded_total',
    'media_url_previews_generated_total',
    'media_s3_operations_total',
    'media_age_accessed_media_seconds',
    'media_datastore_bytes_total',
    'media_db_query_seconds',
    'media_pool_queued_tasks',
    'media_pool_running_tasks',
    'media_pool_task_seconds',
  ]) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  const dlAction = 'download_authenticated';
  t.equal(delta('media_http_requests_total', { host, action: 'upload', method: 'POST' }), 1, 'one upload request');
  t.equal(
    delta('media_http_requests_total', { host, action: dlAction, method: 'GET' }),
    3,
    'three downloads (one missing)',
  );
  t.equal(delta('media_http_responses_total', { host, action: dlAction, method: 'GET', statusCode: '200' }), 2);
  t.equal(delta('media_http_responses_total', { host, action: dlAction, method: 'GET', statusCode: '404' }), 1);
  t.equal(delta('media_http_responses_total', { host, action: 'upload', method: 'POST', statusCode: '200' }), 1);
  t.equal(
    delta('media_http_responses_total', { host, action: 'thumbnail_authenticated', method: 'GET', statusCode: '200' }),
    1,
  );
  t.equal(delta('media_http_response_time_seconds_count', { host, action: dlAction, method: 'GET' }), 3);
  t.equal(
    delta('media_invalid_http_requests_total', { action: dlAction, method: 'GET' }),
    1,
    'unknown Host counted as invalid',
  );
  t.notMatch(text, /evil\.example/, 'the unknown Host is not a label value');
  t.equal(
    delta('media_http_requests_total', { host: '_unknown', action: 'readyz', method: 'GET' }),
    1,
    'probe counted',
  );
  t.equal(delta('media_invalid_http_requests_total', { action: 'readyz', method: 'GET' }), 0, 'probe not invalid');
  t.notMatch(text, new RegExp(mediaId), 'no media ID in any label');
  t.equal(
    delta('media_thumbnails_generated_total', {
      width: '96',
      height: '96',
      method: 'scale',
      animated: 'false',
      origin: host,
    }),
    1,
  );
  t.equal(delta('media_age_accessed_media_seconds_count', {}), 2, 'two successful downloads observed for age');
  t.ok(
    delta('media_datastore_bytes_total', { datastore: 'files', direction: 'write' }) >= image.length,
    'upload bytes written',
  );
  t.ok(
    delta('media_datastore_bytes_total', { datastore: 'files', direction: 'read' }) >= image.length * 2,
    'download bytes read',
  );
  t.ok(delta('media_db_query_seconds_count', { op: 'query', outcome: 'ok' }) > 0, 'queries timed');
  t.match(text, /^media_pool_queued_tasks\{pool="static"\} 0$/m, 'static pool depth');
  t.match(text, /^media_pool_queued_tasks\{pool="preview"\} 0$/m, 'preview pool depth');
});

t.test('cache counters: the blob cache and an unreachable Redis', async (t) => {
  // Redis points at a port nobody listens on: every call is skipped (not connected) and the
  // download goes on from the datastore; the counters say so.
  const repo = await startTestRepo('pglite', {
    metrics: { enabled: true, bindAddress: '127.0.0.1', port: 0 },
    downloads: { cache: { enabled: true, minDownloads: 2 } },
    redis: { enabled: true, databaseNumber: 5, shards: [{ name: 'gone', addr: '127.0.0.1:9' }] },
  });
  t.teardown(() => repo.close());
  const before = (await scrape(repo)).samples;
  const bytes = Buffer.alloc(3000, 7);
  const up = await repo.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(bytes),
    headers: { 'Content-Type': 'application/x-test' },
    token: ALICE,
  });
  const mediaId = String(((await up.json()) as { content_uri: string }).content_uri)
    .split('/')
    .pop()!;
  for (let i = 0; i < 3; i++) {
    const dl = await repo.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { token: ALICE });
    t.ok(Buffer.from(await dl.arrayBuffer()).equals(bytes), `download ${i + 1} has the bytes`);
  }
  const { text, samples: after } = await scrape(repo);
  const delta = (name: string, labels: Record<string, string>) =>
    value(after, name, labels) - value(before, name, labels);
  // Download 1: miss. Download 2: miss that admits (minDownloads 2). Download 3: hit.
  t.equal(delta('media_cache_misses_total', { cache: 'media' }), 2, 'two memory misses');
  t.equal(delta('media_cache_admissions_total', { cache: 'media' }), 1, 'one admission');
  t.equal(delta('media_cache_hits_total', { cache: 'media' }), 1, 'one memory hit');
  t.equal(value(after, 'media_cache_bytes', { cache: 'media' }), bytes.length, 'cache bytes gauge');
  t.equal(value(after, 'media_cache_items', { cache: 'media' }), 1, 'cache items gauge');
  t.ok(
    delta('media_redis_failures_total', { reason: 'not_connected' }) >= 2,
    'Redis calls skipped while it is unreachable',
  );
  t.equal(value(after, 'media_redis_shards_up', {}), 0, 'no shard up');
  t.match(text, /^# TYPE media_cache_evictions_total counter$/m, 'evictions family present');
});
