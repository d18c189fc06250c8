// Issue 13 item 10: an MMR config loads unchanged, with MMR's meaning for every value MMR
// accepts, and each MMR key this server does not build is named in one start-up warning.
// test/fixtures/mmr-config.sample.yaml is MMR's own config.sample.yaml (t2bot/matrix-media-repo
// at 2efe8fa), byte for byte; the server test copies it unchanged into a config directory and
// points it at local services with a second file merged after it, as an operator would.
import t from 'tap';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { loadConfig } from '../src/config/load.js';
import { validateConfigWithWarnings } from '../src/config/validate.js';
import { UNBUILT_KEYS } from '../src/config/unbuilt.js';
import { ALICE } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { POSTGRES_URL, createTestDatabase } from './helpers/databases.js';
import { seedPglite } from './helpers/pglite-template.js';
import { startFederatingServer } from './helpers/federation.js';
import { gif, png } from './helpers/images.js';

const root = new URL('../..', import.meta.url).pathname; // dist/test -> repo root
const FIXTURE = join(root, 'test/fixtures/mmr-config.sample.yaml');
const DS = [{ type: 'file', id: 'local', opts: { path: '/tmp/m' } }];

// The unbuilt entries MMR's sample sets, in UNBUILT_KEYS order.
const SAMPLE_UNBUILT = [
  'plugins',
  'sentry',
  'tasks',
  'pgo',
  'downloads.defaultRangeChunkSizeBytes',
  'urlPreviews.proxyUrl',
];
const entryOf = (w: string) => w.slice(0, w.indexOf(':'));

t.test("MMR's sample config loads unchanged, with MMR's meaning for its values", async (t) => {
  const loaded = await loadConfig(FIXTURE);
  const g = loaded.global;
  t.equal(g.repo.logDirectory, 'logs');
  t.equal(g.homeservers[0]!.adminApiKind, 'synapse');
  t.equal(g.uploads.minBytes, 100, "MMR's explicit minBytes still applies");
  t.same(
    g.redis.shards.map((s) => s.addr),
    ['127.0.0.1:7000', '127.0.0.1:7001', '127.0.0.1:7002'],
    'Go\'s ":7000" is the local system',
  );
  t.same(
    g.datastores.map((d) => [d.id, d.type, d.forKinds]),
    [
      ['UNIQUE_ID_HERE', 'file', ['thumbnails']],
      ['ANOTHER_UNIQUE_ID_HERE', 's3', ['thumbnails', 'remote_media', 'local_media', 'archives']],
    ],
  );
  t.match(g.datastores[1]!.opts, {
    endpoint: 'sfo2.digitaloceanspaces.com',
    ssl: true,
    bucketName: 'your-media-bucket',
    tempPath: '/tmp/mediarepo_s3_upload',
  });
  t.equal(g.thumbnails.numWorkers, 100);
  t.same(g.urlPreviews.allowedNetworks, ['0.0.0.0/0']);
  const warnings = loaded.warnings ?? [];
  t.same(warnings.map(entryOf), SAMPLE_UNBUILT, 'one warning per unbuilt entry, nothing else');
  // Built since issue 16: rateLimit loads with MMR's values and draws no warning.
  t.same(
    [g.rateLimit.enabled, g.rateLimit.requestsPerSecond, g.rateLimit.burst, g.rateLimit.buckets.downloads],
    [true, 1, 10, { capacityBytes: 524288000, drainBytesPerMinute: 5242880, overflowLimitBytes: 104857600 }],
  );
  // Built since issue 15 (the expiry task): loaded with MMR's value, and no warning.
  t.notOk(
    warnings.some((w) => w.includes('expireAfterDays')),
    'downloads/thumbnails.expireAfterDays draw no "not built" warning',
  );
  t.equal(g.downloads.expireAfterDays, 0);
  t.equal(g.thumbnails.expireAfterDays, 0);
});

t.test('values MMR accepts load with its meaning', async (t) => {
  const load = (doc: Record<string, unknown>) => validateConfigWithWarnings({ datastores: DS, ...doc });
  for (const [given, level] of [
    ['panic', 'error'],
    ['fatal', 'error'],
    ['warning', 'warn'],
    ['WARN', 'warn'],
    ['Debug', 'debug'],
    ['trace', 'trace'],
  ]) {
    t.equal(load({ repo: { logLevel: given } }).config.repo.logLevel, level, `logLevel ${given} -> ${level}`);
  }

  const zero = load({
    downloads: { maxBytes: 0 },
    thumbnails: { maxSourceBytes: 0, maxAnimateSizeBytes: 0, expireAfterDays: -1 },
    urlPreviews: { maxPageSizeBytes: 0, expireAfterDays: -1 },
    uploads: { maxBytes: 0, minBytes: 0 },
  });
  t.equal(zero.config.downloads.maxBytes, 0, 'downloads.maxBytes: 0 (no limit) loads');
  t.equal(zero.config.thumbnails.maxSourceBytes, 0);
  t.equal(zero.config.urlPreviews.maxPageSizeBytes, 0);
  t.match(
    zero.warnings,
    [/^thumbnails\.maxSourceBytes: 0 means no limit/, /^urlPreviews\.maxPageSizeBytes: 0 means no limit/],
    'the limits that bound memory say what 0 costs',
  );

  const s3 = (opts: Record<string, unknown>) =>
    load({ datastores: [{ type: 's3', id: 's', opts: { bucketName: 'b', ...opts } }] });
  t.match(
    s3({ endpoint: 'http://minio.local:9000' }).config.datastores[0]!.opts,
    { endpoint: 'minio.local:9000', ssl: false },
    'http:// means ssl false',
  );
  t.match(
    s3({ endpoint: 'https://s3.example.org/' }).config.datastores[0]!.opts,
    { endpoint: 's3.example.org', ssl: true },
    'https:// means ssl true',
  );
  const disagree = s3({ endpoint: 'http://minio.local:9000', ssl: true });
  t.match(disagree.config.datastores[0]!.opts, { ssl: false }, 'the scheme decides');
  t.match(disagree.warnings, [/^datastores\[0\]\.opts\.ssl: true disagrees with the endpoint's http:\/\/ scheme/]);
  // MMR reads opts as strings and parses them as Go does.
  t.match(
    s3({ endpoint: 'minio:9000', ssl: 'false', redirectWhenCached: 'True', prefixLength: '3', multipartUploads: '' })
      .config.datastores[0]!.opts,
    { ssl: false, redirectWhenCached: true, prefixLength: 3, multipartUploads: true },
  );
  t.match(
    s3({ endpoint: 'minio:9000', prefixLength: -2 }).config.datastores[0]!.opts,
    { prefixLength: 0 },
    'MMR clamps a negative prefix',
  );

  t.equal(
    load({ homeservers: [{ name: 'a.org', csApi: 'http://a', adminApiKind: 'conduit' }] }).config.homeservers[0]!
      .adminApiKind,
    'matrix',
    'MMR treats an unknown adminApiKind as matrix',
  );
  const noNets = load({ urlPreviews: { disallowedNetworks: [], allowedNetworks: [] } });
  t.equal(noNets.config.urlPreviews.enabled, false, 'MMR disables previews when neither network list is given');
  t.match(noNets.warnings, [
    /^urlPreviews: disallowedNetworks and allowedNetworks are both empty, so URL previews are disabled/,
  ]);
});

t.test('an unbuilt key is named once, also when per-domain files set it again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-mmr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'a-main.yaml'),
    yaml.dump({
      homeservers: [
        { name: 'a.org', csApi: 'http://a', adminApiKind: 'synapse' },
        { name: 'b.org', csApi: 'http://b', adminApiKind: 'synapse' },
      ],
      datastores: DS,
      quarantine: { allowLocalAdmins: false },
    }),
  );
  writeFileSync(
    join(dir, 'b-domain.yaml'),
    yaml.dump({
      homeserver: 'b.org',
      adminApiKind: 'dendrite',
      quarantine: { replaceThumbnails: false },
      archiving: { selfService: true },
      urlPreviews: { proxyUrl: 'http://proxy.invalid:3128' },
    }),
  );
  const { warnings, domains, global } = await loadConfig(dir);
  // quarantine and adminApiKind are built (issue 15), archiving too (issue 17): only the proxy is named.
  t.same(warnings, [
    `${join(dir, 'b-domain.yaml')}: urlPreviews.proxyUrl: an MMR setting media-repo does not build yet; accepted, it has no effect`,
  ]);
  t.notOk(UNBUILT_KEYS.includes('archiving'));
  t.equal(domains.get('b.org')!.archiving.selfService, true, "b.org's own archiving override applies");
  t.equal(domains.get('a.org')!.archiving.selfService, false);
  t.equal(global.archiving.targetBytesPerPart, 209715200, "MMR's default part size");
});

t.test('0 means no limit where MMR documents "0 to disable", in the code that reads the key', async (t) => {
  const site = createServer((req, res) => {
    res
      .writeHead(200, { 'Content-Type': 'text/html' })
      .end('<html><head><title>Zero means no limit</title></head><body></body></html>');
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  const origin = await startFederatingServer('pglite');
  const repo = await startFederatingServer('pglite', {
    downloads: { maxBytes: 0 },
    thumbnails: { maxSourceBytes: 0, maxAnimateSizeBytes: 0 },
    urlPreviews: { maxPageSizeBytes: 0, allowedNetworks: ['127.0.0.1/32'] },
  });
  t.teardown(async () => {
    await repo.close();
    await origin.close();
    site.closeAllConnections();
    site.close();
  });
  const upload = async (on: typeof origin, bytes: Buffer, type: string) => {
    const res = await on.repo.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      body: new Uint8Array(bytes),
      headers: { 'Content-Type': type },
      token: ALICE,
    });
    t.equal(res.status, 200, `upload ${type}`);
    return ((await res.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
  };

  const remote = await upload(origin, await png(300, 200), 'image/png');
  const fetched = await repo.repo.fetch(`/_matrix/client/v1/media/download/${remote}`, { token: ALICE });
  t.equal(fetched.status, 200, 'downloads.maxBytes: 0 fetches remote media of any size');
  await fetched.arrayBuffer();

  const thumb = await repo.repo.fetch(`/_matrix/client/v1/media/thumbnail/${remote}?width=32&height=32&method=crop`, {
    token: ALICE,
  });
  t.equal(thumb.status, 200, 'thumbnails.maxSourceBytes: 0 thumbnails sources of any size');
  t.equal(thumb.headers.get('content-type'), 'image/png');
  await thumb.arrayBuffer();

  const animatedId = await upload(repo, await gif(300, 200, 3), 'image/gif');
  const animated = await repo.repo.fetch(
    `/_matrix/client/v1/media/thumbnail/${animatedId}?width=96&height=96&animated=true`,
    { token: ALICE },
  );
  t.equal(animated.status, 200);
  t.equal(
    animated.headers.get('content-type'),
    'image/webp',
    'thumbnails.maxAnimateSizeBytes: 0 animates sources of any size',
  );
  await animated.arrayBuffer();

  const q = new URLSearchParams({ url: `http://127.0.0.1:${(site.address() as AddressInfo).port}/page.html` });
  const preview = await repo.repo.fetch(`/_matrix/client/v1/media/preview_url?${q}`, { token: ALICE });
  t.equal(preview.status, 200);
  t.match(
    await preview.json(),
    { 'og:title': 'Zero means no limit' },
    'urlPreviews.maxPageSizeBytes: 0 reads the whole page',
  );
});

/** Runs the built server (the launcher, as `npm start` does) in `cwd`; resolves once it listens. */
async function startCli(
  configPath: string,
  cwd: string,
): Promise<{ port: number; output: () => string; stop(): Promise<void> }> {
  const launcher = new URL('../src/launcher.cjs', import.meta.url).pathname;
  const child = spawn(process.execPath, [launcher, '-config', configPath], {
    cwd,
    env: { ...process.env, REPO_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${out}`)), 120_000);
    const check = () => {
      const m = /media-repo listening .*port=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${out}`));
    });
  });
  return {
    port,
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

t.test("the server starts on MMR's sample config and names each unbuilt key once", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-mmr-'));
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:example.org' });
  const db = POSTGRES_URL ? await createTestDatabase() : null;
  if (!db) await seedPglite(join(dir, 'db'));
  t.teardown(async () => {
    await hs.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const configDir = join(dir, 'config');
  const sample = yaml.load(readFileSync(FIXTURE, 'utf8')) as { homeservers: Record<string, unknown>[] };
  // MMR's directory mode: its file unchanged, then one merged after it with what must point at
  // this machine: the database, the homeserver's address, a writable datastore, a free port.
  mkdirSync(configDir);
  copyFileSync(FIXTURE, join(configDir, 'media-repo.yaml'));
  writeFileSync(
    join(configDir, 'zz-local.yaml'),
    yaml.dump({
      repo: { port: 0 },
      database: { postgres: db?.dsn ?? '', embeddedPath: join(dir, 'db') },
      homeservers: [{ ...sample.homeservers[0], csApi: hs.url }],
      datastores: [{ type: 'file', id: 'UNIQUE_ID_HERE', forKinds: ['all'], opts: { path: join(dir, 'media') } }],
    }),
  );
  t.equal(
    readFileSync(join(configDir, 'media-repo.yaml'), 'utf8'),
    readFileSync(FIXTURE, 'utf8'),
    'the sample is used unchanged',
  );

  const server = await startCli(configDir, dir);
  t.teardown(() => server.stop());
  const url = `http://127.0.0.1:${server.port}`;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(url + path, {
      ...init,
      headers: { 'X-Forwarded-Host': 'example.org', Authorization: `Bearer ${ALICE}`, ...(init.headers ?? {}) },
    });

  const tooSmall = await call('/_matrix/media/v3/upload', {
    method: 'POST',
    body: 'twelve bytes',
    headers: { 'Content-Type': 'text/plain' },
  });
  t.equal(tooSmall.status, 400, "the sample's minBytes: 100 applies");
  t.equal(((await tooSmall.json()) as { errcode: string }).errcode, 'M_MEDIA_TOO_SMALL');
  const body = 'x'.repeat(200);
  const up = await call('/_matrix/media/v3/upload', {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'text/plain' },
  });
  t.equal(up.status, 200);
  const mxc = ((await up.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
  const down = await call(`/_matrix/client/v1/media/download/${mxc}`);
  t.equal(down.status, 200);
  t.equal(await down.text(), body);

  const lines = server
    .output()
    .split('\n')
    .filter((l) => l.includes('config warning'));
  for (const entry of SAMPLE_UNBUILT) {
    const named = lines.filter((l) => l.includes(`warning="${entry}: `));
    t.equal(named.length, 1, `one warning names ${entry}`);
  }
  t.equal(lines.length, SAMPLE_UNBUILT.length, 'no other config warnings');
  t.ok(
    existsSync(join(dir, 'logs')) && readdirSync(join(dir, 'logs')).some((n) => n.endsWith('.log')),
    'repo.logDirectory: logs writes a log file relative to where the server was started',
  );
});
