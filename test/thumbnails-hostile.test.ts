import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import {
  apng,
  avif,
  bmp,
  dims,
  gif,
  gifManyFrames,
  head,
  jpeg,
  png,
  pngBomb,
  postscript,
  svg,
  tiff,
  truncate,
  webp,
} from './helpers/images.js';

// Hostile thumbnail sources: decompression bombs, absurd frame counts, oversized sources,
// truncated files of every supported format, files that lie about their type, empty files.
// Each must be refused with the right status and errcode, quickly, without a 500, a hang or
// a memory spike, and the server must keep answering afterwards. PGlite only (the database
// plays no part in decoding; the smoke subset in thumbnails.test.ts covers both drivers).

const HANG_MS = 20_000;

async function upload(r: TestRepo, body: Buffer, type: string): Promise<string> {
  const res = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': type },
    token: ALICE,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`upload (${type}, ${body.length} bytes) answered ${res.status}: ${text}`);
  return String((JSON.parse(text) as { content_uri: string }).content_uri)
    .split('/')
    .pop()!;
}

interface Got {
  status: number;
  type: string | null;
  body: Buffer;
  ms: number;
}

/** A client v1 thumbnail request with a 20 s abort: null (and a failed assertion) if it hung. */
async function thumb(t: Test, r: TestRepo, id: string, query: string, what: string): Promise<Got | null> {
  const start = Date.now();
  try {
    const res = await r.fetch(`/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?${query}`, {
      token: ALICE,
      signal: AbortSignal.timeout(HANG_MS),
    });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get('content-type'), body, ms: Date.now() - start };
  } catch (e) {
    t.fail(`${what}: no answer within ${HANG_MS} ms (${String(e)})`);
    return null;
  }
}

function errcodeOf(g: Got): string | undefined {
  try {
    return (JSON.parse(g.body.toString('utf8')) as { errcode?: string }).errcode;
  } catch {
    return undefined;
  }
}

function expectError(t: Test, g: Got | null, status: number, errcode: string, what: string): void {
  if (!g) return;
  t.equal(g.status, status, `${what}: status ${status} (body ${g.body.toString('utf8', 0, 200)})`);
  t.equal(errcodeOf(g), errcode, `${what}: errcode ${errcode}`);
}

async function expectPng(t: Test, g: Got | null, w: number, h: number, what: string): Promise<void> {
  if (!g) return;
  if (g.status !== 200) {
    t.fail(`${what}: expected 200, got ${g.status} ${g.body.toString('utf8', 0, 200)}`);
    return;
  }
  t.equal(g.type, 'image/png', `${what}: image/png`);
  const d = await dims(g.body);
  t.same([d.width, d.height], [w, h], `${what}: ${w}x${h}`);
}

t.test('hostile thumbnail sources (pglite)', async (t) => {
  const r = await startTestRepo('pglite', { uploads: { minBytes: 0 } });
  t.teardown(() => r.close());

  t.test('a 16000x16000 PNG bomb: 413 quickly, no memory spike', async (t) => {
    const bomb = await pngBomb();
    t.ok(bomb.length < 1024 * 1024, `the bomb is under 1 MB (${bomb.length} bytes)`);
    const queries = [
      'width=96&height=96&method=scale',
      'width=32&height=32&method=crop',
      'width=96&height=96&animated=true',
    ];
    // Image threads start on demand: the same requests on a small image first, so the growth
    // measured below is the bomb's, not the threads' start-up.
    const small = await upload(r, await png(200, 150), 'image/png');
    for (const q of queries) await thumb(t, r, small, q, `warm-up ?${q}`);
    await new Promise((res) => setTimeout(res, 500));
    const rssBefore = process.memoryUsage().rss;
    const id = await upload(r, bomb, 'image/png');
    for (const q of queries) {
      const g = await thumb(t, r, id, q, `bomb ?${q}`);
      expectError(t, g, 413, 'M_TOO_LARGE', `bomb ?${q}`);
      if (g) t.ok(g.ms < 5000, `bomb ?${q}: refused in ${g.ms} ms (< 5 s)`);
    }
    // Give any background work (pre-generation) a moment, then measure.
    await new Promise((res) => setTimeout(res, 500));
    const grown = process.memoryUsage().rss - rssBefore;
    t.ok(grown < 200 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MB (< 200 MB)`);
  });

  t.test('a 10,000-frame GIF: 413 animated and still', async (t) => {
    const many = gifManyFrames(10_000);
    t.equal((await dims(many)).pages, 10_000, 'the fixture really has 10,000 frames');
    const id = await upload(r, many, 'image/gif');
    for (const q of ['width=96&height=96&animated=true', 'width=96&height=96&animated=false', 'width=96&height=96']) {
      const g = await thumb(t, r, id, q, `10,000 frames ?${q}`);
      expectError(t, g, 413, 'M_TOO_LARGE', `10,000 frames ?${q}`);
      if (g) t.ok(g.ms < 5000, `10,000 frames ?${q}: refused in ${g.ms} ms (< 5 s)`);
    }
  });

  t.test('truncated files of every format: 400 M_UNKNOWN, never 500 or a hang', async (t) => {
    const sources: [name: string, body: Buffer, type: string][] = [
      ['JPEG', await jpeg(300, 200, 70), 'image/jpeg'],
      ['PNG', await png(300, 200, 70), 'image/png'],
      ['GIF', await gif(300, 200, 1, 70), 'image/gif'],
      ['WebP', await webp(300, 200, 70), 'image/webp'],
      ['AVIF', await avif(300, 200, 70), 'image/avif'],
      ['TIFF', await tiff(300, 200, 70), 'image/tiff'],
      ['BMP', bmp(300, 200, 70), 'image/bmp'],
      ['APNG', apng(300, 200, 3, 70), 'image/apng'],
    ];
    for (const [name, body, type] of sources) {
      for (const [cut, bytes] of [
        ['50%', truncate(body, 0.5)],
        ['20 bytes', head(body, 20)],
      ] as const) {
        const what = `${name} cut at ${cut}`;
        const id = await upload(r, bytes, type);
        const g = await thumb(t, r, id, 'width=32&height=32&method=crop', what);
        expectError(t, g, 400, 'M_UNKNOWN', what);
      }
    }
  });

  t.test('files that lie about their type', async (t) => {
    const svgAsPng = await upload(r, svg(300, 200), 'image/png');
    expectError(
      t,
      await thumb(t, r, svgAsPng, 'width=96&height=96', 'SVG as PNG'),
      400,
      'M_UNKNOWN',
      'SVG uploaded as image/png (SVG not in types)',
    );
    const pngAsSvg = await upload(r, await png(300, 200, 71), 'image/svg+xml');
    await expectPng(
      t,
      await thumb(t, r, pngAsSvg, 'width=96&height=96', 'PNG as SVG'),
      96,
      64,
      'PNG uploaded as image/svg+xml',
    );
    const ps = await upload(r, postscript(), 'image/jpeg');
    expectError(
      t,
      await thumb(t, r, ps, 'width=96&height=96', 'PostScript'),
      400,
      'M_UNKNOWN',
      'PostScript uploaded as image/jpeg',
    );
    const noise = await upload(r, randomBytes(50_000), 'image/png');
    expectError(
      t,
      await thumb(t, r, noise, 'width=96&height=96', 'noise'),
      400,
      'M_UNKNOWN',
      'random bytes uploaded as image/png',
    );
  });

  t.test('a zero-byte file: 400 M_UNKNOWN', async (t) => {
    const id = await upload(r, Buffer.alloc(0), 'image/png');
    expectError(t, await thumb(t, r, id, 'width=96&height=96', 'empty'), 400, 'M_UNKNOWN', 'zero-byte file');
  });

  t.test('afterwards the server still thumbnails normally', async (t) => {
    const id = await upload(r, await png(300, 200, 72), 'image/png');
    await expectPng(t, await thumb(t, r, id, 'width=96&height=96', 'after'), 96, 64, 'a normal request');
  });
});

t.test('maxSourceBytes (pglite)', async (t) => {
  const LIMIT = 50_000;
  const r = await startTestRepo('pglite', { thumbnails: { maxSourceBytes: LIMIT, pregenerate: false } });
  t.teardown(() => r.close());
  const large = await png(1000, 750, 73);
  t.ok(large.length > LIMIT, `the source is over the limit (${large.length} > ${LIMIT})`);
  const id = await upload(r, large, 'image/png');
  const g = await thumb(t, r, id, 'width=96&height=96', 'over maxSourceBytes');
  expectError(t, g, 413, 'M_TOO_LARGE', 'a source over maxSourceBytes');
  const small = await jpeg(300, 200, 73);
  t.ok(small.length < LIMIT, `a source under the limit (${small.length})`);
  const sid = await upload(r, small, 'image/jpeg');
  const ok = await thumb(t, r, sid, 'width=96&height=96', 'under maxSourceBytes');
  t.equal(ok?.status, 200, 'a source under the limit is thumbnailed');
  t.equal(ok?.type, 'image/jpeg', 'as a JPEG');
});
