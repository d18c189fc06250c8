import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startTestRepo } from './helpers/repo.js';
import { gif, png } from './helpers/images.js';
import { expectError, expectThumb, tasksRun, thumb, upload } from './helpers/thumbs.js';

// Thumbnail settings that need a server of their own: dynamicSizing, allowAnimated,
// defaultAnimated, maxAnimateSizeBytes, pregeneration, blurhash (MSC2448) and identicons off.
// Split from thumbnails.test.ts so the two run in parallel.

t.test('thumbnail configuration variants (pglite)', async (t) => {
  t.test('dynamicSizing: the exact size, capped by the largest bucket', async (t) => {
    const r = await startTestRepo('pglite', { thumbnails: { pregenerate: false, dynamicSizing: true } });
    t.teardown(() => r.close());
    const { id } = await upload(r, await png(1000, 750, 50), 'image/png');
    const cases: [query: string, w: number, h: number][] = [
      ['width=100&height=100&method=scale', 100, 75],
      ['width=100&height=50&method=crop', 100, 50],
      ['width=2000&height=2000&method=scale', 800, 600],
      ['width=2000&height=2000&method=crop', 800, 600],
      ['width=32&height=32&method=scale', 32, 24],
      ['width=200&height=10&method=scale', 13, 10],
      ['width=123&height=45&method=crop', 123, 45],
    ];
    for (const [q, w, h] of cases) {
      await expectThumb(t, await thumb(r, id, q), { type: 'image/png', width: w, height: h }, q);
    }
  });

  t.test('allowAnimated: false gives a still', async (t) => {
    const r = await startTestRepo('pglite', { thumbnails: { pregenerate: false, allowAnimated: false } });
    t.teardown(() => r.close());
    const { id } = await upload(r, await gif(300, 200, 4, 51), 'image/gif');
    await expectThumb(
      t,
      await thumb(r, id, 'width=96&height=96&animated=true'),
      { type: 'image/png', width: 96, height: 64 },
      'animated=true',
    );
    await expectThumb(
      t,
      await thumb(r, id, 'width=96&height=96&org.matrix.msc2705.animated=true'),
      { type: 'image/png', width: 96, height: 64 },
      'org.matrix.msc2705.animated=true',
    );
  });

  t.test('defaultAnimated: true animates when the parameter is absent', async (t) => {
    const r = await startTestRepo('pglite', { thumbnails: { pregenerate: false, defaultAnimated: true } });
    t.teardown(() => r.close());
    const { id } = await upload(r, await gif(300, 200, 4, 52), 'image/gif');
    await expectThumb(
      t,
      await thumb(r, id, 'width=96&height=96'),
      { type: 'image/webp', width: 96, height: 64, pages: 4 },
      'absent',
    );
    await expectThumb(
      t,
      await thumb(r, id, 'width=96&height=96&animated=false'),
      { type: 'image/png', width: 96, height: 64 },
      'animated=false',
    );
    const still = await upload(r, await png(300, 200, 52), 'image/png');
    await expectThumb(
      t,
      await thumb(r, still.id, 'width=96&height=96'),
      { type: 'image/png', width: 96, height: 64 },
      'static PNG stays PNG',
    );
  });

  t.test('an animation over maxAnimateSizeBytes is thumbnailed as a still', async (t) => {
    const LIMIT = 50_000;
    const r = await startTestRepo('pglite', { thumbnails: { pregenerate: false, maxAnimateSizeBytes: LIMIT } });
    t.teardown(() => r.close());
    const large = await gif(300, 200, 5, 53);
    const small = await gif(60, 40, 3, 53);
    t.ok(
      large.length > LIMIT && small.length < LIMIT,
      `fixtures straddle the limit (${large.length}, ${small.length})`,
    );
    const l = await upload(r, large, 'image/gif');
    await expectThumb(
      t,
      await thumb(r, l.id, 'width=96&height=96&animated=true'),
      { type: 'image/png', width: 96, height: 64 },
      'over the limit',
    );
    const s = await upload(r, small, 'image/gif');
    await expectThumb(
      t,
      await thumb(r, s.id, 'width=96&height=96&animated=true'),
      { type: 'image/webp', width: 60, height: 40, pages: 3 },
      'under the limit',
    );
  });

  t.test('pregeneration: an upload is thumbnailed in the background', async (t) => {
    const r = await startTestRepo('pglite');
    t.teardown(() => r.close());
    const start = tasksRun(r).static;
    const { id } = await upload(r, await png(1000, 750, 54), 'image/png');
    const deadline = Date.now() + 10_000;
    while (tasksRun(r).static === start && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    t.ok(tasksRun(r).static > start, 'the static task counter rose within 10 s of the upload');
    // Wait until the background work settles (no change for 1 s, at most 10 s more).
    let last = tasksRun(r).static;
    let stableSince = Date.now();
    const settle = Date.now() + 10_000;
    while (Date.now() - stableSince < 1000 && Date.now() < settle) {
      await new Promise((res) => setTimeout(res, 50));
      const now = tasksRun(r).static;
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      }
    }
    const before = tasksRun(r).static;
    await expectThumb(
      t,
      await thumb(r, id, 'width=320&height=240&method=scale'),
      { type: 'image/png', width: 320, height: 240 },
      'scale 320x240',
    );
    await expectThumb(
      t,
      await thumb(r, id, 'width=96&height=96&method=crop'),
      { type: 'image/png', width: 96, height: 96 },
      'crop 96x96',
    );
    t.equal(tasksRun(r).static, before, 'both were pre-generated: no new task');
    await expectThumb(
      t,
      await thumb(r, id, 'width=96&height=96&method=scale'),
      { type: 'image/png', width: 96, height: 72 },
      'scale 96x96',
    );
    t.equal(tasksRun(r).static, before + 1, 'a size that is not pre-generated runs one task');
  });

  t.test('blurhash (MSC2448)', async (t) => {
    const r = await startTestRepo('pglite', {
      thumbnails: { pregenerate: false },
      featureSupport: { MSC2448: { enabled: true } },
    });
    t.teardown(() => r.close());
    const { json } = await upload(r, await png(300, 200, 55), 'image/png');
    const hash = json['xyz.amorgan.blurhash'];
    t.type(hash, 'string', `a blurhash beside content_uri: ${JSON.stringify(json)}`);
    t.match(String(json.content_uri), /^mxc:\/\//);
    if (typeof hash === 'string') {
      t.equal(hash.length, 4 + 2 * 4 * 3, '28 characters for 4x3 components');
      t.match(hash, /^[0-9A-Za-z#$%*+,\-.:;=?@[\]^_{|}~]+$/, 'base83');
      t.equal(hash[0], 'L', 'size flag: (4-1) + (3-1)*9 = 21 = "L"');
    }
    const random = await upload(r, randomBytes(4096), 'image/png');
    t.notOk('xyz.amorgan.blurhash' in random.json, 'random bytes: no blurhash key');
  });

  t.test('identicons disabled', async (t) => {
    const r = await startTestRepo('pglite', { identicons: { enabled: false } });
    t.teardown(() => r.close());
    const res = await r.fetch('/_matrix/media/r0/identicon/alice?width=64&height=64');
    await expectError(
      t,
      { res, body: Buffer.from(await res.arrayBuffer()) },
      404,
      'M_UNRECOGNIZED',
      undefined,
      'identicons disabled',
    );
  });
});
