import t from 'tap';
import sharp from 'sharp';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { ALICE, SERVER_NAME, freePort, spawnRepo, testConfig } from './helpers/repo.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { seedPglite } from './helpers/pglite-template.js';
import { DEFAULT_TYPES } from './helpers/thumbs.js';
import { dims, svg } from './helpers/images.js';
import { allowSvgLoader } from '../workers/image/harden.js';

// issue-13: SVG thumbnails failed in the shipped server ("unsupported image format") with
// image/svg+xml in thumbnails.types. VIPS_BLOCK_UNTRUSTED (set before the first worker loads
// libvips) blocks libvips' SVG loader, and in-process test servers never saw it: the test
// process loads sharp in its main thread first (image helpers), so libvips starts before the
// variable is set. Here the server runs exactly as shipped: the built launcher, a child process
// that loads libvips only in its worker threads.

interface Spawned {
  port: number;
  stop(): Promise<void>;
}

async function shippedServer(t: { teardown(fn: () => unknown): void }, types: string[]): Promise<Spawned> {
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-svg-'));
  await seedPglite(join(dir, 'db'));
  const port = await freePort();
  const file = join(dir, 'media-repo.yaml');
  writeFileSync(
    file,
    yaml.dump(
      testConfig(dir, hs.url, '', {
        repo: { bindAddress: '127.0.0.1', port, logLevel: 'info' },
        thumbnails: { types, numWorkers: 1 },
      }),
    ),
  );
  // The environment a shipped server starts with: nothing set for libvips by the caller.
  const env = { ...process.env };
  delete env.VIPS_BLOCK_UNTRUSTED;
  const { child } = await spawnRepo(file, env);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('close', r));
      child.kill('SIGTERM');
      await gone;
    }
    await hs.close();
    rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(stop);
  return { port, stop };
}

async function svgThumbnail(port: number): Promise<{ status: number; type: string | null; body: Buffer }> {
  const headers = { 'X-Forwarded-Host': SERVER_NAME, Authorization: `Bearer ${ALICE}` };
  const up = await fetch(`http://127.0.0.1:${port}/_matrix/media/v3/upload`, {
    method: 'POST',
    body: new Uint8Array(svg(300, 200)),
    headers: { ...headers, 'Content-Type': 'image/svg+xml' },
  });
  if (up.status !== 200) throw new Error(`upload: ${up.status} ${await up.text()}`);
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const res = await fetch(
    `http://127.0.0.1:${port}/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?width=96&height=96&method=scale`,
    {
      headers,
      signal: AbortSignal.timeout(60_000),
    },
  );
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

t.test('issue-13: the shipped server thumbnails SVG when image/svg+xml is configured', async (t) => {
  const s = await shippedServer(t, [...DEFAULT_TYPES, 'image/svg+xml']);
  const r = await svgThumbnail(s.port);
  t.equal(r.status, 200, `an SVG thumbnail: ${r.status} ${r.status === 200 ? '' : r.body.toString()}`);
  t.equal(r.type, 'image/png');
  if (r.status === 200) t.same(await dims(r.body), { width: 96, height: 64, pages: 1, format: 'png' }, 'a 96x64 PNG');
  await s.stop();
});

t.test('issue-13: the shipped server refuses SVG when it is not configured', async (t) => {
  const s = await shippedServer(t, DEFAULT_TYPES);
  const r = await svgThumbnail(s.port);
  t.equal(r.status, 400, `refused: ${r.body.toString()}`);
  t.match(JSON.parse(r.body.toString()), { errcode: 'M_UNKNOWN', error: /image\/svg\+xml/ });
  await s.stop();
});

t.test(
  "the SVG loader block is libvips' own, not only the type check: blocked by name, unblocked by name",
  async (t) => {
    // This test process loaded libvips without VIPS_BLOCK_UNTRUSTED, so SVG starts out loadable
    // here; the block by name must close it whatever the environment was.
    const doc = svg(30, 20);
    allowSvgLoader(sharp, false);
    await t.rejects(sharp(doc).png().toBuffer(), /unsupported image format/, 'blocked: libvips will not load an SVG');
    allowSvgLoader(sharp, true);
    t.same((await sharp(doc).png().toBuffer({ resolveWithObject: true })).info.width, 30, 'unblocked: it loads');
    allowSvgLoader(sharp, false);
    await t.rejects(sharp(doc).png().toBuffer(), /unsupported image format/, 'blocked again');
  },
);
