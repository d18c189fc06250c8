// Identicons: deterministic, seed-dependent, mirrored, sized as asked, never blank.
import t from 'tap';
import { renderIdenticon } from '../workers/image/identicon.js';
import { startTestRepo } from './helpers/repo.js';
import { dims } from './helpers/images.js';

const BACKGROUND = [240, 240, 240, 255];

/** Distinct RGBA colours in the image, as 'r,g,b,a' strings. */
function colours(data: Buffer): Set<string> {
  const out = new Set<string>();
  for (let p = 0; p < data.length; p += 4) out.add(`${data[p]},${data[p + 1]},${data[p + 2]},${data[p + 3]}`);
  return out;
}

t.test('same seed and size give identical bytes', async (t) => {
  const a = renderIdenticon('@alice:example.org', 96, 96);
  const b = renderIdenticon('@alice:example.org', 96, 96);
  t.same({ width: a.width, height: a.height, channels: a.channels }, { width: 96, height: 96, channels: 4 });
  t.ok(a.data.equals(b.data));
  t.ok(Buffer.isBuffer(a.data));
});

t.test('different seeds give different pixels', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(renderIdenticon(`seed-${i}`, 30, 30).data.toString('base64'));
  t.equal(seen.size, 200, '200 seeds, 200 distinct images');
  t.notOk(renderIdenticon('@alice:example.org', 64, 64).data.equals(renderIdenticon('@bob:example.org', 64, 64).data));
});

t.test('two colours: a light background and one readable foreground', async (t) => {
  for (let i = 0; i < 50; i++) {
    const { data } = renderIdenticon(`colour-${i}`, 60, 60);
    const set = colours(data);
    t.equal(set.size, 2, `seed ${i}: two colours`);
    t.ok(set.has(BACKGROUND.join(',')), 'background present (the margin at least)');
    const fg = [...set]
      .find((c) => c !== BACKGROUND.join(','))!
      .split(',')
      .map(Number);
    const luma = 0.299 * fg[0]! + 0.587 * fg[1]! + 0.114 * fg[2]!;
    if (luma > 180) t.fail(`seed ${i}: foreground ${fg} too light to read`);
    if (fg[3] !== 255) t.fail('foreground opaque');
  }
});

t.test('left-right mirror symmetry of the grid region', async (t) => {
  for (const [w, h] of [
    [64, 64],
    [100, 100],
    [37, 37],
    [7, 7],
    [120, 50],
    [51, 200],
    [1024, 999],
  ]) {
    for (const seed of ['a', 'b', '@carol:example.org', 'mirror']) {
      const { data } = renderIdenticon(seed, w, h);
      const side = Math.min(w, h),
        ox = Math.floor((w - side) / 2),
        oy = Math.floor((h - side) / 2);
      let ok = true;
      for (let y = oy; y < oy + side && ok; y++) {
        for (let x = 0; x < side && ok; x++) {
          const p = (y * w + ox + x) * 4,
            q = (y * w + ox + side - 1 - x) * 4;
          ok = data.readUInt32BE(p) === data.readUInt32BE(q);
        }
      }
      t.ok(ok, `${seed} ${w}x${h} symmetric`);
      // Outside the centred square is plain background.
      let outside = true;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          if (x >= ox && x < ox + side && y >= oy && y < oy + side) continue;
          if (data.readUInt32BE((y * w + x) * 4) !== 0xf0f0f0ff) outside = false;
        }
      }
      t.ok(outside, `${seed} ${w}x${h} background outside the grid square`);
    }
  }
});

t.test('non-square and extreme sizes have the right buffer length', async (t) => {
  for (const [w, h] of [
    [1, 1],
    [1, 1024],
    [1024, 1],
    [300, 20],
    [17, 400],
    [1024, 1024],
  ]) {
    const r = renderIdenticon('size', w, h);
    t.equal(r.data.length, w * h * 4, `${w}x${h}`);
    t.same([r.width, r.height, r.channels], [w, h, 4]);
  }
});

t.test('at least one cell is on for every seed', async (t) => {
  // Small renders are enough to see whether anything is drawn.
  for (let i = 0; i < 2000; i++) {
    const { data } = renderIdenticon(`on-${i}`, 6, 6);
    if (colours(data).size < 2) t.fail(`seed on-${i} renders blank`);
  }
  t.pass('2000 seeds all draw something');
  // sha256 of these seeds has the 15 grid bits all zero (found by search): only the centre cell
  // is lit. At 12x12 a cell is 2 px after a 1 px margin, so cell 2 is pixels 5..6 on each axis.
  for (const seed of ['blank-29727', 'blank-52987']) {
    const { data } = renderIdenticon(seed, 12, 12);
    const lit: number[] = [];
    for (let i = 0; i < 144; i++) if (data.readUInt32BE(i * 4) !== 0xf0f0f0ff) lit.push(i);
    t.same(lit, [5 * 12 + 5, 5 * 12 + 6, 6 * 12 + 5, 6 * 12 + 6], `${seed}: only the centre cell`);
  }
  // Margin is half a cell: at 60x60 a cell is 10 px, so rows/columns 0..4 and 55..59 are background.
  for (let i = 0; i < 20; i++) {
    const { data } = renderIdenticon(`margin-${i}`, 60, 60);
    for (let k = 0; k < 60; k++) {
      for (const m of [0, 4, 55, 59]) {
        if (data.readUInt32BE((m * 60 + k) * 4) !== 0xf0f0f0ff || data.readUInt32BE((k * 60 + m) * 4) !== 0xf0f0f0ff)
          t.fail(`margin-${i}: edge pixel not background`);
      }
    }
  }
});

t.test('sizes outside 1..1024 throw RangeError', async (t) => {
  for (const [w, h] of [
    [0, 10],
    [10, 0],
    [1025, 10],
    [10, 1025],
    [-1, 5],
    [2.5, 4],
    [NaN, 4],
    [Infinity, 4],
  ]) {
    t.throws(() => renderIdenticon('x', w!, h!), RangeError, `${w}x${h}`);
  }
  t.doesNotThrow(() => renderIdenticon('', 1, 1), 'empty seed is fine');
});

// MMR (api/r0/identicon.go) clamps each side to 96..512 and, when only width is given, makes the
// identicon square. An 8x8 request used to come back 8x8.
t.test('issue-13: the HTTP endpoint clamps sizes to 96..512 as MMR does', async (t) => {
  const r = await startTestRepo('pglite');
  t.teardown(() => r.close());
  const size = async (query: string) => {
    const res = await r.request(`/_matrix/media/r0/identicon/clamp${query}`, { signal: AbortSignal.timeout(30_000) });
    t.equal(res.status, 200, `${query}: 200`);
    t.equal(res.headers.get('content-type'), 'image/png', `${query}: image/png`);
    const m = await dims(Buffer.from(await res.arrayBuffer()));
    return [m.width, m.height];
  };
  t.same(await size('?width=8&height=8'), [96, 96], '8x8 is raised to 96x96');
  t.same(await size('?width=1&height=4000'), [96, 512], 'each side on its own');
  t.same(await size('?width=2000&height=2000'), [512, 512], 'above 512 is lowered to 512');
  t.same(await size('?width=200&height=150'), [200, 150], 'inside the range: as asked');
  t.same(await size('?width=200'), [200, 200], 'width alone: square');
  t.same(await size('?height=300'), [96, 300], 'height alone: width keeps its default');
  t.same(await size(''), [96, 96], 'no size: 96x96');
});
