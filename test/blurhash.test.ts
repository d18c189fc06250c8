// BlurHash encoder/decoder: hand-derived vectors, uniform colours, structure of the string,
// round trip of a smooth image, and rejection of bad input.
import t from 'tap';
import { decodeBlurhash, encodeBlurhash } from '../workers/image/blurhash.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';

function image(
  width: number,
  height: number,
  channels: 3 | 4,
  fn: (x: number, y: number) => [number, number, number],
): Uint8Array {
  const px = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * channels;
      px.set(fn(x, y), p);
      if (channels === 4) px[p + 3] = (x * 37 + y * 11) % 256; // alpha must not matter
    }
  }
  return px;
}

t.test('hand-derived vectors', async (t) => {
  // 2x1 white|black, 2x1 components. Linear light: DC = 0.5 -> sRGB 187.5.. -> 188 (0xBCBCBC =
  // 12369084 = "Lqe9"). AC = (2/2) * (1*cos 0 + 0*cos(pi/2)) = 1: the max AC quantises to
  // floor(166 - 0.5) clamped to 82 ("~"), so maxValue = 83/166 = 0.5 and each channel quantises
  // to floor(sqrt(2)*9 + 9.5) clamped to 18: 18*361 + 18*19 + 18 = 6858 = "~q".
  t.equal(
    encodeBlurhash(
      image(2, 1, 3, (x) => (x === 0 ? [255, 255, 255] : [0, 0, 0])),
      2,
      1,
      3,
      2,
      1,
    ),
    '1~Lqe9~q',
  );
  // The same image turned vertical, with 1x2 components: only the size flag changes (9 = 0 + 1*9).
  t.equal(
    encodeBlurhash(
      image(1, 2, 3, (_, y) => (y === 0 ? [255, 255, 255] : [0, 0, 0])),
      1,
      2,
      3,
      1,
      2,
    ),
    '9~Lqe9~q',
  );
  // 3x1 black|black|white: cos(pi*x/3) = 1, 0.5, -0.5, so AC = (2/3) * -0.5 = -1/3 (a negative
  // component). Max AC: floor(166/3 - 0.5) = 54 ("s"), maxValue = 55/166; the channel quantises to
  // floor(-sqrt(1.006..)*9 + 9.5) = 0 -> "00". DC = 1/3 linear -> sRGB 156 (10263708 = "H_=B").
  t.equal(
    encodeBlurhash(
      image(3, 1, 3, (x) => (x === 2 ? [255, 255, 255] : [0, 0, 0])),
      3,
      1,
      3,
      2,
      1,
    ),
    '1sH_=B00',
  );
});

t.test('a uniform colour: exact DC, AC only where the basis does not sum to zero', async (t) => {
  // BlurHash samples cos(pi*i*x/w) at x = 0..w-1 (no half-pixel offset, as in the reference
  // encoders), and that sum is w for i = 0, 0 for even i > 0 but 1 for odd i. So a flat image of
  // linear value L gets AC(i,j) = 0 when i or j is even and non-zero, and small non-zero terms
  // otherwise: AC(odd,0) = 2L/w, AC(0,odd) = 2L/h, AC(odd,odd) = 2L/(w*h).
  for (const colour of [
    [200, 100, 50],
    [0, 0, 0],
    [255, 255, 255],
    [1, 128, 254],
  ] as [number, number, number][]) {
    const rgb = (colour[0] << 16) | (colour[1] << 8) | colour[2];
    const dc = [3, 2, 1, 0].map((e) => ALPHABET[Math.floor(rgb / 83 ** e) % 83]).join('');
    for (const [nx, ny] of [
      [1, 1],
      [4, 3],
      [9, 9],
    ] as [number, number][]) {
      const hash = encodeBlurhash(
        image(16, 12, 4, () => colour),
        16,
        12,
        4,
        nx,
        ny,
      );
      t.equal(hash.length, 4 + 2 * nx * ny, `${colour} ${nx}x${ny} length`);
      t.equal(hash.slice(2, 6), dc, 'DC digits are the colour (sRGB -> linear -> sRGB is exact)');
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const k = j * nx + i;
          // 9*361 + 9*19 + 9 = 3429 = "fQ": every channel at the zero level.
          if (k > 0 && ((i > 0 && i % 2 === 0) || (j > 0 && j % 2 === 0)) && hash.slice(4 + 2 * k, 6 + 2 * k) !== 'fQ')
            t.fail(`${colour} ${nx}x${ny} AC(${i},${j}) not zero`);
        }
      }
      // punch 0 drops the AC terms: what is left is exactly the colour.
      const out = decodeBlurhash(hash, 5, 4, 0);
      for (let p = 0; p < out.length; p += 4) {
        for (let c = 0; c < 3; c++)
          if (Math.abs(out[p + c]! - colour[c]!) > 1)
            t.fail(`pixel ${p / 4} channel ${c}: ${out[p + c]} vs ${colour[c]}`);
        if (out[p + 3] !== 255) t.fail('decoded alpha is opaque');
      }
    }
  }
  // 1x1 components: no AC at all, so the max-AC digit is "0" and the rest is the colour in four
  // base83 digits: 0xFFFFFF = 29*83^3 + 28*83^2 + 30*83 + 10 = "TSUA"; 0xC86432 = "M|T9".
  t.equal(
    encodeBlurhash(
      image(3, 3, 3, () => [255, 255, 255]),
      3,
      3,
      3,
      1,
      1,
    ),
    '00TSUA',
  );
  t.equal(
    encodeBlurhash(
      image(3, 3, 3, () => [200, 100, 50]),
      3,
      3,
      3,
      1,
      1,
    ),
    '00M|T9',
  );
  // 200,100,50 on 16x12: the largest AC is AC(0,1) in red = 2*L(200)/12 = 0.09626, quantised to
  // floor(0.09626*166 - 0.5) = 15 = "F".
  t.equal(
    encodeBlurhash(
      image(16, 12, 3, () => [200, 100, 50]),
      16,
      12,
      3,
      4,
      3,
    )[1],
    'F',
  );
});

t.test('size flag and length for every component count', async (t) => {
  const px = image(20, 15, 3, (x, y) => [(x * 13) % 256, (y * 17) % 256, ((x + y) * 7) % 256]);
  for (let nx = 1; nx <= 9; nx++) {
    for (let ny = 1; ny <= 9; ny++) {
      const hash = encodeBlurhash(px, 20, 15, 3, nx, ny);
      if (hash.length !== 4 + 2 * nx * ny) t.fail(`${nx}x${ny}: length ${hash.length}`);
      if (hash[0] !== ALPHABET[nx - 1 + (ny - 1) * 9]) t.fail(`${nx}x${ny}: size flag ${hash[0]}`);
      if (![...hash].every((c) => ALPHABET.includes(c))) t.fail(`${nx}x${ny}: alphabet`);
      decodeBlurhash(hash, 3, 3); // every encoder output decodes
    }
  }
  t.pass('81 component combinations');
});

t.test('round trip of a smooth image', async (t) => {
  const w = 32,
    h = 32;
  const px = image(w, h, 3, (x, y) => [40 + x * 6, 220 - y * 5, 100 + Math.round(60 * Math.sin((x + y) / 12))]);
  const hash = encodeBlurhash(px, w, h, 3, 4, 3);
  const out = decodeBlurhash(hash, w, h);
  t.equal(out.length, w * h * 4);
  const err = [0, 0, 0];
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) err[c] += Math.abs(out[i * 4 + c]! - px[i * 3 + c]!);
  for (let c = 0; c < 3; c++)
    t.ok(err[c]! / (w * h) < 12, `channel ${c} mean abs error ${(err[c]! / (w * h)).toFixed(2)} < 12`);
  // punch 0 removes every AC term: a flat image of the DC colour.
  const flat = decodeBlurhash(hash, 4, 4, 0);
  for (let p = 4; p < flat.length; p += 4)
    if (flat[p] !== flat[0] || flat[p + 1] !== flat[1] || flat[p + 2] !== flat[2]) t.fail('punch 0 is flat');
  // A larger punch exaggerates contrast: the decoded range widens.
  const range = (a: Uint8ClampedArray) => {
    let lo = 255,
      hi = 0;
    for (let p = 0; p < a.length; p += 4) {
      lo = Math.min(lo, a[p]!);
      hi = Math.max(hi, a[p]!);
    }
    return hi - lo;
  };
  t.ok(range(decodeBlurhash(hash, w, h, 1.5)) > range(out), 'punch 1.5 widens the red range');
});

t.test('channels 3 and 4 give the same hash', async (t) => {
  const fn = (x: number, y: number): [number, number, number] => [(x * 29 + y) % 256, (y * 31) % 256, (x * y) % 256];
  for (const [nx, ny] of [
    [1, 1],
    [4, 3],
    [9, 2],
  ]) {
    t.equal(
      encodeBlurhash(image(24, 17, 4, fn), 24, 17, 4, nx, ny),
      encodeBlurhash(image(24, 17, 3, fn), 24, 17, 3, nx, ny),
      `${nx}x${ny}`,
    );
  }
});

t.test('bad input throws', async (t) => {
  const px = image(4, 4, 3, () => [10, 20, 30]);
  for (const [nx, ny] of [
    [0, 1],
    [1, 0],
    [10, 1],
    [1, 10],
    [1.5, 2],
    [-1, 3],
    [NaN, 1],
  ]) {
    t.throws(() => encodeBlurhash(px, 4, 4, 3, nx!, ny!), RangeError, `components ${nx}x${ny}`);
  }
  t.throws(() => encodeBlurhash(px, 5, 4, 3, 1, 1), RangeError, 'buffer too short for the size');
  t.throws(() => encodeBlurhash(px, 0, 4, 3, 1, 1), RangeError, 'zero width');
  const good = encodeBlurhash(px, 4, 4, 3, 3, 2);
  t.doesNotThrow(() => decodeBlurhash(good, 8, 8));
  for (const bad of [
    '',
    '00000',
    good.slice(0, -1),
    good + '0',
    good.slice(0, 3) + '"' + good.slice(4),
    good.slice(0, 6) + ' ' + good.slice(7),
    '0' + good.slice(1), // size flag says 1x1 but the string is longer
    '00~~~~', // DC beyond 24 bits
    good.slice(0, 6) + '~~' + good.slice(8),
  ]) {
    // AC code 6888 > 19^3 - 1
    t.throws(() => decodeBlurhash(bad, 4, 4), Error, `invalid hash ${JSON.stringify(bad)}`);
  }
  t.throws(() => decodeBlurhash(good, 0, 4), RangeError, 'zero decode width');
});
