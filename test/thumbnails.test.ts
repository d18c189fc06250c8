import t from 'tap';
import { drivers } from './helpers/databases.js';
import { GUEST, startTestRepo } from './helpers/repo.js';
import {
  animatedWebp,
  apng,
  avif,
  bmp,
  dims,
  gif,
  hasFfmpeg,
  jpeg,
  jpegWithOrientation,
  png,
  svg,
  tiff,
  videoMov,
  videoMp4,
  videoWebm,
  webp,
} from './helpers/images.js';
import {
  DEFAULT_TYPES,
  EXTRA_TYPES,
  expectError,
  expectThumb,
  sha,
  tasksRun,
  thumb,
  upload,
} from './helpers/thumbs.js';

// Thumbnails: parameters and errors, bucket selection and output sizes, the original served
// when it is already small enough, output formats per source type, animation, EXIF rotation,
// repeatability, singleflight, pre-generation, blurhash (MSC2448) and identicons.
// The full matrix runs on PGlite; a smoke subset runs on both drivers. Configuration variants
// (one server each) are in thumbnails-config.test.ts.

// ---- smoke: both drivers ---------------------------------------------------------------

for (const d of drivers()) {
  t.test(`thumbnail smoke (${d.name})`, { skip: d.skip }, async (t) => {
    const r = await startTestRepo(d.name);
    t.teardown(() => r.close());
    const { id } = await upload(r, await png(1000, 750, 900), 'image/png');

    t.test('scale and crop on the client v1 path', async (t) => {
      await expectThumb(
        t,
        await thumb(r, id, 'width=96&height=96&method=scale'),
        { type: 'image/png', width: 96, height: 72 },
        'scale 96x96',
      );
      await expectThumb(
        t,
        await thumb(r, id, 'width=32&height=32&method=crop'),
        { type: 'image/png', width: 32, height: 32 },
        'crop 32x32',
      );
      await expectThumb(
        t,
        await thumb(r, id, 'width=96&height=96', { token: GUEST }),
        { type: 'image/png', width: 96, height: 72 },
        'guest',
      );
    });

    t.test('repeat gives identical bytes and ETag', async (t) => {
      const a = await thumb(r, id, 'width=320&height=240');
      const b = await thumb(r, id, 'width=320&height=240');
      t.equal(a.res.status, 200, 'first: 200');
      t.equal(b.res.status, 200, 'repeat: 200');
      t.ok(a.body.equals(b.body), 'identical bytes');
      t.ok(a.res.headers.get('etag'), 'has an ETag');
      t.equal(a.res.headers.get('etag'), b.res.headers.get('etag'), 'same ETag');
    });

    t.test('errors: no token, unknown media, frozen media on the legacy path', async (t) => {
      await expectError(
        t,
        await thumb(r, id, 'width=96&height=96', { token: null }),
        401,
        'M_MISSING_TOKEN',
        undefined,
        'no token',
      );
      await expectError(
        t,
        await thumb(r, 'AAAAAAAAAAAAAAAAAAAAAAAA', 'width=96&height=96'),
        404,
        'M_NOT_FOUND',
        undefined,
        'unknown media',
      );
      for (const p of ['r0', 'v1', 'v3'] as const) {
        await expectError(
          t,
          await thumb(r, id, 'width=96&height=96', { path: p }),
          404,
          'M_NOT_FOUND',
          undefined,
          `frozen media on ${p}`,
        );
      }
    });
  });
}

// ---- the full matrix: PGlite only --------------------------------------------------------

t.test('thumbnails (pglite)', async (t) => {
  const r = await startTestRepo('pglite', {
    repo: { freezeUnauthenticatedMedia: false },
    thumbnails: { pregenerate: false, types: [...DEFAULT_TYPES, ...EXTRA_TYPES] },
  });
  t.teardown(() => r.close());
  const big = await upload(r, await png(1000, 750), 'image/png'); // 1000x750, used by many cases

  t.test('authentication comes before parameter validation', async (t) => {
    await expectError(
      t,
      await thumb(r, big.id, '', { token: null }),
      401,
      'M_MISSING_TOKEN',
      undefined,
      'no token, no parameters',
    );
    await expectError(
      t,
      await thumb(r, big.id, 'width=abc', { token: null }),
      401,
      'M_MISSING_TOKEN',
      undefined,
      'no token, bad width',
    );
    await expectError(
      t,
      await thumb(r, big.id, 'width=96&height=96', { token: null }),
      401,
      'M_MISSING_TOKEN',
      undefined,
      'no token, good parameters',
    );
    await expectThumb(
      t,
      await thumb(r, big.id, 'width=96&height=96', { token: GUEST }),
      { type: 'image/png', width: 96, height: 72 },
      'guests are allowed',
    );
    for (const p of ['r0', 'v1', 'v3'] as const) {
      await expectThumb(
        t,
        await thumb(r, big.id, 'width=96&height=96', { path: p, token: null }),
        { type: 'image/png', width: 96, height: 72 },
        `legacy ${p} needs no token`,
      );
    }
  });

  t.test('parameter errors (exact errcode and message)', async (t) => {
    const cases: [query: string, errcode: string, error: string][] = [
      ['height=32', 'M_MISSING_PARAM', 'width: required'],
      ['width=32', 'M_MISSING_PARAM', 'height: required'],
      ['width=abc&height=32', 'M_INVALID_PARAM', "width: expected a positive integer, got 'abc'"],
      ['width=0&height=32', 'M_INVALID_PARAM', "width: expected a positive integer, got '0'"],
      ['width=-5&height=32', 'M_INVALID_PARAM', "width: expected a positive integer, got '-5'"],
      ['width=1.5&height=32', 'M_INVALID_PARAM', "width: expected a positive integer, got '1.5'"],
      ['width=32&height=abc', 'M_INVALID_PARAM', "height: expected a positive integer, got 'abc'"],
      ['width=32&height=0', 'M_INVALID_PARAM', "height: expected a positive integer, got '0'"],
      ['width=32&height=-5', 'M_INVALID_PARAM', "height: expected a positive integer, got '-5'"],
      ['width=32&height=32&method=foo', 'M_INVALID_PARAM', "method: expected 'crop' or 'scale', got 'foo'"],
      ['width=32&height=32&animated=maybe', 'M_INVALID_PARAM', "animated: expected 'true' or 'false', got 'maybe'"],
    ];
    for (const [q, code, msg] of cases) {
      await expectError(t, await thumb(r, big.id, q), 400, code, msg, `client v1 ?${q}`);
    }
    for (const p of ['r0', 'v1', 'v3'] as const) {
      await expectError(
        t,
        await thumb(r, big.id, 'height=32', { path: p }),
        400,
        'M_MISSING_PARAM',
        'width: required',
        `${p} missing width`,
      );
      await expectError(
        t,
        await thumb(r, big.id, 'width=32&height=32&method=foo', { path: p }),
        400,
        'M_INVALID_PARAM',
        "method: expected 'crop' or 'scale', got 'foo'",
        `${p} bad method`,
      );
    }
    await expectError(
      t,
      await thumb(r, 'AAAAAAAAAAAAAAAAAAAAAAAA', 'width=96&height=96'),
      404,
      'M_NOT_FOUND',
      undefined,
      'unknown media (client v1)',
    );
    await expectError(
      t,
      await thumb(r, 'AAAAAAAAAAAAAAAAAAAAAAAA', 'width=96&height=96', { path: 'v3' }),
      404,
      'M_NOT_FOUND',
      undefined,
      'unknown media (v3)',
    );
  });

  t.test('every path serves identical bytes and ETag, and repeats are identical', async (t) => {
    const first = await thumb(r, big.id, 'width=96&height=96&method=crop');
    await expectThumb(t, first, { type: 'image/png', width: 96, height: 96 }, 'client v1 crop 96x96');
    const etag = first.res.headers.get('etag');
    t.ok(etag, 'an ETag is sent');
    for (const p of ['client', 'r0', 'v1', 'v3', 'client'] as const) {
      const again = await thumb(r, big.id, 'width=96&height=96&method=crop', { path: p });
      t.equal(again.res.status, 200, `${p}: 200`);
      t.equal(sha(again.body), sha(first.body), `${p}: identical bytes`);
      t.equal(again.res.headers.get('etag'), etag, `${p}: same ETag`);
    }
    const s1 = await thumb(r, big.id, 'width=640&height=480');
    const s2 = await thumb(r, big.id, 'width=640&height=480', { path: 'r0' });
    t.ok(s1.body.length > 0 && s1.body.equals(s2.body), 'scale 640x480 is identical on client v1 and r0');
    t.not(sha(s1.body), sha(first.body), 'different parameters give a different thumbnail');
    // Both PNGs: the ETag is each one's own hash, never the other's (headers are shared per
    // output type, the ETag is not).
    t.equal(s1.res.headers.get('etag'), `"${sha(s1.body)}"`, 'the 640x480 thumbnail has its own ETag');
    const firstAgain = await thumb(r, big.id, 'width=96&height=96&method=crop');
    t.equal(firstAgain.res.headers.get('etag'), `"${sha(first.body)}"`, 'and the 96x96 one still has its own');
  });

  t.test('bucket selection and output size (1000x750 source)', async (t) => {
    const cases: [query: string, w: number, h: number][] = [
      ['width=32&height=32&method=scale', 32, 24],
      ['width=32&height=32', 32, 24], // scale is the default
      ['width=96&height=96&method=scale', 96, 72],
      ['width=100&height=100&method=scale', 320, 240], // bucket 320x240
      ['width=320&height=240&method=scale', 320, 240],
      ['width=321&height=100&method=scale', 640, 480], // 320 is too narrow: 640x480
      ['width=10&height=500&method=scale', 800, 600], // only 800x600 is tall enough
      ['width=1000&height=1000&method=scale', 800, 600], // none fits: the largest
      ['width=96&height=96&method=crop', 96, 96],
      ['width=50&height=50&method=crop', 96, 96], // bucket 96x96
      ['width=20&height=20&method=crop', 32, 32],
      ['width=97&height=10&method=crop', 320, 240],
      ['width=640&height=480&method=crop', 640, 480],
      ['width=5000&height=5000&method=crop', 800, 600],
    ];
    for (const [q, w, h] of cases) {
      await expectThumb(t, await thumb(r, big.id, q), { type: 'image/png', width: w, height: h }, q);
    }
  });

  t.test('crop never upscales: the largest rectangle of the bucket aspect (600x300 source)', async (t) => {
    const { id } = await upload(r, await png(600, 300, 1), 'image/png');
    const cases: [query: string, w: number, h: number][] = [
      ['width=800&height=600&method=crop', 400, 300],
      ['width=640&height=480&method=crop', 400, 300],
      ['width=320&height=240&method=crop', 320, 240],
      ['width=96&height=96&method=crop', 96, 96],
      ['width=800&height=600&method=scale', 600, 300],
      ['width=320&height=240&method=scale', 320, 160],
    ];
    for (const [q, w, h] of cases) {
      await expectThumb(t, await thumb(r, id, q), { type: 'image/png', width: w, height: h }, q);
    }
  });

  t.test('the original is served when it is already small enough', async (t) => {
    const p = await png(300, 200, 2);
    const pu = await upload(r, p, 'image/png');
    const pg = await thumb(r, pu.id, 'width=320&height=240');
    await expectThumb(t, pg, { type: 'image/png', width: 300, height: 200 }, 'PNG 300x200 scale 320x240');
    t.ok(pg.body.equals(p), 'PNG: byte-identical to the upload');

    const j = await jpeg(300, 200, 2);
    const ju = await upload(r, j, 'application/octet-stream');
    const jg = await thumb(r, ju.id, 'width=800&height=600');
    await expectThumb(
      t,
      jg,
      { type: 'image/jpeg', width: 300, height: 200 },
      'JPEG (uploaded as octet-stream) scale 800x600',
    );
    t.ok(jg.body.equals(j), 'JPEG: byte-identical, typed from the bytes not the upload');

    const j43 = await jpeg(400, 300, 3);
    const cu = await upload(r, j43, 'image/jpeg');
    const cg = await thumb(r, cu.id, 'width=640&height=480&method=crop');
    await expectThumb(
      t,
      cg,
      { type: 'image/jpeg', width: 400, height: 300 },
      'JPEG 400x300 crop 640x480 (same aspect)',
    );
    t.ok(cg.body.equals(j43), 'crop at the source size: byte-identical');

    const wide = await upload(r, await png(600, 300, 3), 'image/png');
    const wg = await thumb(r, wide.id, 'width=640&height=480');
    t.ok(wg.body.equals(await png(600, 300, 3)), 'PNG 600x300 scale 640x480: byte-identical');

    const w = await webp(300, 200, 2);
    const wu = await upload(r, w, 'image/webp');
    const wgot = await thumb(r, wu.id, 'width=320&height=240');
    await expectThumb(
      t,
      wgot,
      { type: 'image/png', width: 300, height: 200 },
      'WebP 300x200 scale 320x240 is re-encoded as PNG',
    );
    t.notOk(wgot.body.equals(w), 'WebP: not the original bytes');

    const o = await jpegWithOrientation(400, 200, 6, 2);
    const ou = await upload(r, o, 'image/jpeg');
    const og = await thumb(r, ou.id, 'width=800&height=600');
    await expectThumb(t, og, { type: 'image/jpeg', width: 200, height: 400 }, 'rotated JPEG at its own size');
    t.notOk(og.body.equals(o), 'a JPEG that needs EXIF rotation is not served as the original');

    const shrunk = await thumb(r, pu.id, 'width=96&height=96');
    await expectThumb(t, shrunk, { type: 'image/png', width: 96, height: 64 }, 'PNG 300x200 scale 96x96');
    t.notOk(shrunk.body.equals(p), 'a smaller output is not the original');
  });

  t.test('each source type: scale 96x96 of a 300x200 source', async (t) => {
    const ffmpeg = hasFfmpeg();
    const cases: [name: string, make: () => Promise<Buffer | null> | Buffer, uploadType: string, outType: string][] = [
      ['JPEG', () => jpeg(300, 200, 4), 'image/jpeg', 'image/jpeg'],
      ['PNG', () => png(300, 200, 4), 'image/png', 'image/png'],
      ['APNG', () => apng(300, 200, 3, 4), 'image/apng', 'image/png'],
      ['GIF', () => gif(300, 200, 3, 4), 'image/gif', 'image/png'],
      ['WebP', () => webp(300, 200, 4), 'image/webp', 'image/png'],
      ['animated WebP', () => animatedWebp(300, 200, 3, 4), 'image/webp', 'image/png'],
      ['AVIF', () => avif(300, 200, 4), 'image/avif', 'image/png'],
      ['TIFF', () => tiff(300, 200, 4), 'image/tiff', 'image/png'],
      ['BMP', () => bmp(300, 200, 4), 'image/bmp', 'image/png'],
      ['SVG', () => svg(300, 200), 'image/svg+xml', 'image/png'],
      ['MP4', () => videoMp4(300, 200), 'video/mp4', 'image/png'],
      ['WebM', () => videoWebm(300, 200), 'video/webm', 'image/png'],
      ['MOV', () => videoMov(300, 200), 'video/quicktime', 'image/png'],
    ];
    for (const [name, make, uploadType, outType] of cases) {
      t.test(
        name,
        { skip: uploadType.startsWith('video/') && !ffmpeg ? 'ffmpeg is not on PATH' : false },
        async (t) => {
          const body = await make();
          if (!body) {
            t.fail(`${name}: no fixture (ffmpeg missing?)`);
            return;
          }
          const { id } = await upload(r, body, uploadType);
          const got = await thumb(r, id, 'width=96&height=96&method=scale');
          await expectThumb(t, got, { type: outType, width: 96, height: 64 }, `${name} scale 96x96`);
          await expectThumb(
            t,
            await thumb(r, id, 'width=32&height=32&method=crop'),
            { type: outType, width: 32, height: 32 },
            `${name} crop 32x32`,
          );
        },
      );
    }
  });

  t.test('the decoder follows the sniffed bytes, not the uploaded Content-Type', async (t) => {
    const asSvg = await upload(r, await png(300, 200, 5), 'image/svg+xml');
    await expectThumb(
      t,
      await thumb(r, asSvg.id, 'width=96&height=96'),
      { type: 'image/png', width: 96, height: 64 },
      'PNG uploaded as SVG',
    );
    const asPng = await upload(r, await jpeg(300, 200, 5), 'image/png');
    await expectThumb(
      t,
      await thumb(r, asPng.id, 'width=96&height=96'),
      { type: 'image/jpeg', width: 96, height: 64 },
      'JPEG uploaded as PNG',
    );
    const svgAsPng = await upload(r, svg(300, 200), 'image/png');
    await expectThumb(
      t,
      await thumb(r, svgAsPng.id, 'width=96&height=96'),
      { type: 'image/png', width: 96, height: 64 },
      'SVG uploaded as PNG, with image/svg+xml in types',
    );
    const gifAsJpeg = await upload(r, await gif(300, 200, 3, 5), 'image/jpeg');
    await expectThumb(
      t,
      await thumb(r, gifAsJpeg.id, 'width=96&height=96&animated=true'),
      { type: 'image/webp', width: 96, height: 64, pages: 3 },
      'animated GIF uploaded as JPEG still animates',
    );
  });

  t.test('animation', async (t) => {
    const sources: [name: string, body: Buffer, type: string, frames: number][] = [
      ['GIF', await gif(300, 200, 5, 6), 'image/gif', 5],
      ['animated WebP', await animatedWebp(300, 200, 4, 6), 'image/webp', 4],
      ['APNG', apng(300, 200, 3, 6), 'image/apng', 3],
    ];
    for (const [name, body, type, frames] of sources) {
      const { id } = await upload(r, body, type);
      const anim = await thumb(r, id, 'width=96&height=96&animated=true');
      await expectThumb(
        t,
        anim,
        { type: 'image/webp', width: 96, height: 64, pages: frames },
        `${name} animated=true: all ${frames} frames`,
      );
      const msc = await thumb(r, id, 'width=96&height=96&org.matrix.msc2705.animated=true');
      await expectThumb(
        t,
        msc,
        { type: 'image/webp', width: 96, height: 64, pages: frames },
        `${name} org.matrix.msc2705.animated=true`,
      );
      t.ok(msc.body.equals(anim.body), `${name}: the MSC2705 name gives the same thumbnail`);
      await expectThumb(
        t,
        await thumb(r, id, 'width=96&height=96&animated=true&method=crop'),
        { type: 'image/webp', width: 96, height: 96, pages: frames },
        `${name} animated crop 96x96`,
      );
      await expectThumb(
        t,
        await thumb(r, id, 'width=320&height=240&animated=true'),
        { type: 'image/webp', width: 300, height: 200, pages: frames },
        `${name} animated at its own size`,
      );
      await expectThumb(
        t,
        await thumb(r, id, 'width=96&height=96&animated=false'),
        { type: 'image/png', width: 96, height: 64 },
        `${name} animated=false`,
      );
      await expectThumb(
        t,
        await thumb(r, id, 'width=96&height=96'),
        { type: 'image/png', width: 96, height: 64 },
        `${name} no animated parameter`,
      );
    }
    const still = await upload(r, await png(300, 200, 6), 'image/png');
    await expectThumb(
      t,
      await thumb(r, still.id, 'width=96&height=96&animated=true'),
      { type: 'image/png', width: 96, height: 64 },
      'animated=true on a static PNG',
    );
    const stillJpeg = await upload(r, await jpeg(300, 200, 6), 'image/jpeg');
    await expectThumb(
      t,
      await thumb(r, stillJpeg.id, 'width=96&height=96&animated=true'),
      { type: 'image/jpeg', width: 96, height: 64 },
      'animated=true on a JPEG',
    );
  });

  t.test('EXIF orientation is applied', async (t) => {
    for (const [o, w, h] of [
      [6, 48, 96],
      [8, 48, 96],
      [3, 96, 48],
      [1, 96, 48],
    ] as const) {
      const { id } = await upload(r, await jpegWithOrientation(400, 200, o, 10 + o), 'image/jpeg');
      const got = await thumb(r, id, 'width=96&height=96&method=scale');
      await expectThumb(t, got, { type: 'image/jpeg', width: w, height: h }, `orientation ${o}`);
      if (got.res.status === 200) {
        const m = await dims(got.body);
        t.ok(
          m.orientation === undefined || m.orientation === 1,
          `orientation ${o}: output carries no rotation (${m.orientation})`,
        );
      }
    }
    const { id } = await upload(r, await jpegWithOrientation(400, 200, 6, 20), 'image/jpeg');
    await expectThumb(
      t,
      await thumb(r, id, 'width=320&height=240&method=crop'),
      { type: 'image/jpeg', width: 200, height: 150 },
      'orientation 6, crop 320x240: 4:3 inside the rotated 200x400, unscaled',
    );
  });

  t.test('singleflight: 100 concurrent identical requests run one task', async (t) => {
    const { id } = await upload(r, await png(1000, 750, 30), 'image/png');
    const before = tasksRun(r).static;
    const all = await Promise.all(Array.from({ length: 100 }, () => thumb(r, id, 'width=96&height=96&method=crop')));
    t.same([...new Set(all.map((g) => g.res.status))], [200], 'all 200');
    t.equal(new Set(all.map((g) => sha(g.body))).size, 1, 'identical bytes');
    t.equal(tasksRun(r).static, before + 1, 'the static task counter rose by exactly 1');
    const again = await thumb(r, id, 'width=96&height=96&method=crop');
    t.ok(again.body.equals(all[0]!.body), 'a later request gets the same bytes');
    t.equal(tasksRun(r).static, before + 1, 'and is served from the store, no new task');
    await thumb(r, id, 'width=32&height=32&method=crop');
    t.equal(tasksRun(r).static, before + 2, 'a new size runs a new task (the counter moves)');

    const g = await upload(r, await gif(300, 200, 4, 30), 'image/gif');
    const abefore = tasksRun(r).animated;
    const anim = await Promise.all(
      Array.from({ length: 20 }, () => thumb(r, g.id, 'width=96&height=96&animated=true')),
    );
    t.same([...new Set(anim.map((x) => x.res.status))], [200], 'animated: all 200');
    t.equal(new Set(anim.map((x) => sha(x.body))).size, 1, 'animated: identical bytes');
    t.equal(tasksRun(r).animated, abefore + 1, 'the animated task counter rose by exactly 1');
  });

  t.test('blurhash is off by default', async (t) => {
    const { json } = await upload(r, await png(200, 100, 40), 'image/png');
    t.notOk('xyz.amorgan.blurhash' in json, `no blurhash key: ${JSON.stringify(json)}`);
  });

  t.test('identicons', async (t) => {
    const get = async (path: string) => {
      const res = await r.fetch(path, { signal: AbortSignal.timeout(20_000) });
      return { res, body: Buffer.from(await res.arrayBuffer()) };
    };
    const a = await get('/_matrix/media/r0/identicon/alice?width=128&height=128');
    t.equal(a.res.status, 200, 'identicon: 200');
    t.equal(a.res.headers.get('content-type'), 'image/png', 'identicon: image/png');
    if (a.res.status === 200)
      t.same(await dims(a.body), { width: 128, height: 128, pages: 1, format: 'png' }, '128x128 PNG');
    const a2 = await get('/_matrix/media/r0/identicon/alice?width=128&height=128');
    t.ok(a2.body.equals(a.body), 'same seed: identical bytes');
    const b = await get('/_matrix/media/r0/identicon/bob?width=128&height=128');
    t.equal(b.res.status, 200, 'other seed: 200');
    t.notOk(b.body.equals(a.body), 'another seed: different bytes');
    const dflt = await get('/_matrix/media/r0/identicon/alice');
    t.equal(dflt.res.status, 200, 'no size: 200');
    if (dflt.res.status === 200) {
      const m = await dims(dflt.body);
      t.same([m.width, m.height], [96, 96], 'missing width and height default to 96');
    }
  });
});
