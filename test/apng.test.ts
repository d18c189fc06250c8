// APNG decoding (workers/image/apng.ts) on real bytes: fixtures from the test encoder, frames
// decoded by the real sharp. Covers detection, header reading, splitting, compositing per
// dispose_op and blend_op, and malformed or truncated input (always 'corrupt APNG').
import t, { type Test } from 'tap';
import sharp from 'sharp';
import { composeApng, isAnimatedPng, readApngInfo, splitApngFrames } from '../workers/image/apng.js';
import { crc32, encodeApng, readChunks, writeChunks, type EncodeFrame, type RawChunk } from './helpers/apng-encode.js';

type RGBA = [number, number, number, number];
const RED: RGBA = [255, 0, 0, 255],
  GREEN: RGBA = [0, 255, 0, 255],
  BLUE: RGBA = [0, 0, 255, 255],
  CLEAR: RGBA = [0, 0, 0, 0];

function solid(width: number, height: number, c: RGBA): Buffer {
  const b = Buffer.alloc(width * height * 4);
  for (let i = 0; i < b.length; i += 4) b.set(c, i);
  return b;
}
const frame = (width: number, height: number, c: RGBA, rest: Partial<EncodeFrame> = {}): EncodeFrame => ({
  data: solid(width, height, c),
  width,
  height,
  ...rest,
});

async function decode(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Pixel (x, y) of page `page` in a tall composed image. */
function px(out: { data: Buffer; width: number; height: number }, page: number, x: number, y: number): RGBA {
  const o = ((page * out.height + y) * out.width + x) * 4;
  return [...out.data.subarray(o, o + 4)] as RGBA;
}

function close(t: Test, got: RGBA, want: RGBA, msg: string): void {
  t.ok(
    got.every((v, i) => Math.abs(v - want[i]) <= 1),
    `${msg}: got ${got}, want ${want} ±1`,
  );
}

const corruptRe = /^corrupt APNG: /;
/** Runs fn and requires it to throw an Error whose message starts 'corrupt APNG'. */
function throwsCorrupt(t: Test, fn: () => unknown, msg: string): void {
  try {
    fn();
    t.fail(`${msg}: did not throw`);
  } catch (e) {
    t.ok(e instanceof Error && corruptRe.test(e.message), `${msg}: ${(e as Error).message}`);
  }
}

/** Edits an encoded APNG chunk by chunk, with fresh CRCs. */
function edit(png: Buffer, fn: (chunks: RawChunk[]) => RawChunk[] | void): Buffer {
  const chunks = readChunks(png);
  return writeChunks(fn(chunks) ?? chunks);
}
const nthFcTL = (chunks: RawChunk[], n: number) => chunks.filter((c) => c.type === 'fcTL')[n].data;

// Three frames on a 4x4 canvas: full red, green 2x2 at (1,1), blue 1x1 at (0,0).
function threeFrames(dispose1: 0 | 1 | 2, opts: { defaultImageIsFrame?: boolean; chunkSize?: number } = {}): Buffer {
  return encodeApng(
    [
      frame(4, 4, RED, { delayMs: 100 }),
      frame(2, 2, GREEN, { x: 1, y: 1, delayMs: 40, disposeOp: dispose1 }),
      frame(1, 1, BLUE, { delayMs: 0 }),
    ],
    { width: 4, height: 4 },
    { numPlays: 5, ...opts },
  );
}

t.test('isAnimatedPng', async (t) => {
  const apng = threeFrames(0);
  t.equal(isAnimatedPng(apng), true, 'APNG');
  const plain = await sharp({
    create: { width: 4, height: 4, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 1 } },
  })
    .png()
    .toBuffer();
  const jpeg = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .jpeg()
    .toBuffer();
  t.equal(isAnimatedPng(plain), false, 'plain PNG from sharp');
  t.equal(isAnimatedPng(jpeg), false, 'JPEG');
  t.equal(isAnimatedPng(Buffer.alloc(0)), false, 'empty');
  t.equal(isAnimatedPng(apng.subarray(0, 8)), false, 'signature only');
  t.equal(isAnimatedPng(apng.subarray(0, 20)), false, 'cut in IHDR');
  t.equal(isAnimatedPng(encodeApng([frame(2, 2, RED)], { width: 2, height: 2 })), false, 'one-frame APNG');
  // acTL after the first IDAT does not make an APNG (spec), and is not looked for.
  const late = edit(apng, (cs) => {
    const actl = cs.splice(
      cs.findIndex((c) => c.type === 'acTL'),
      1,
    )[0];
    cs.splice(cs.findIndex((c) => c.type === 'IDAT') + 1, 0, actl);
  });
  t.equal(isAnimatedPng(late), false, 'acTL after IDAT');
  t.equal(readApngInfo(late), null, 'acTL after IDAT: not an APNG');
  // Nothing past the first IDAT is read: garbage there does not matter to the cheap check.
  const chunks = readChunks(apng);
  const firstIdatEnd =
    8 + chunks.slice(0, chunks.findIndex((c) => c.type === 'IDAT') + 1).reduce((n, c) => n + 12 + c.data.length, 0);
  const junk = Buffer.concat([apng.subarray(0, firstIdatEnd), Buffer.alloc(64, 0xff)]);
  t.equal(isAnimatedPng(junk), true, 'garbage after the first IDAT is not scanned');
  t.equal(readApngInfo(junk)?.numFrames, 3);
});

t.test('readApngInfo', async (t) => {
  t.same(readApngInfo(threeFrames(0)), { width: 4, height: 4, numFrames: 3, numPlays: 5, defaultIsFrame: true });
  t.same(readApngInfo(threeFrames(0, { defaultImageIsFrame: false })), {
    width: 4,
    height: 4,
    numFrames: 3,
    numPlays: 5,
    defaultIsFrame: false,
  });
  t.equal(
    readApngInfo(encodeApng([frame(2, 2, RED), frame(2, 2, BLUE)], { width: 2, height: 2 }))?.numPlays,
    0,
    'numPlays 0 = forever',
  );
  t.equal(
    readApngInfo(
      await sharp({ create: { width: 2, height: 2, channels: 3, background: 'red' } })
        .png()
        .toBuffer(),
    ),
    null,
    'plain PNG',
  );
  t.equal(
    readApngInfo(
      await sharp({ create: { width: 2, height: 2, channels: 3, background: 'red' } })
        .jpeg()
        .toBuffer(),
    ),
    null,
    'JPEG',
  );
  const badCrc = Buffer.from(threeFrames(0));
  badCrc[8 + 8 + 2] ^= 1; // a bit of IHDR's width
  throwsCorrupt(t, () => readApngInfo(badCrc), 'IHDR CRC');
  throwsCorrupt(
    t,
    () => readApngInfo(edit(threeFrames(0), (cs) => void cs[1].data.writeUInt32BE(0, 0))),
    'num_frames 0',
  );
  throwsCorrupt(t, () => readApngInfo(edit(threeFrames(0), (cs) => [cs[1], cs[0], ...cs.slice(2)])), 'IHDR not first');
});

t.test('splitApngFrames: frames, rectangles, standalone PNGs', async (t) => {
  const input = [
    frame(6, 5, RED, { delayMs: 100 }),
    {
      ...frame(3, 2, CLEAR, { x: 2, y: 3, delayMs: 40, disposeOp: 1 as const, blendOp: 1 as const }),
      data: Buffer.from([...Array(24).keys()].map((i) => i * 10)),
    },
    frame(1, 4, BLUE, { x: 5, y: 0, delayMs: 7, disposeOp: 2 }),
  ];
  for (const defaultImageIsFrame of [true, false]) {
    // Tiny chunks: several IDAT / fdAT chunks per frame, plus chunks the frame PNGs should carry.
    const apng = edit(encodeApng(input, { width: 6, height: 5 }, { defaultImageIsFrame, chunkSize: 7 }), (cs) => {
      const gama = Buffer.alloc(4);
      gama.writeUInt32BE(45455, 0);
      cs.splice(
        2,
        0,
        { type: 'gAMA', data: gama },
        { type: 'sRGB', data: Buffer.from([0]) },
        { type: 'tEXt', data: Buffer.from('k\0v') },
      );
    });
    const { info, frames } = splitApngFrames(apng, 10);
    t.equal(info.defaultIsFrame, defaultImageIsFrame);
    t.equal(frames.length, 3, 'frame count');
    t.same(
      frames.map(({ png: _, ...f }) => f),
      [
        { x: 0, y: 0, width: 6, height: 5, delayMs: 100, disposeOp: 0, blendOp: 0 },
        { x: 2, y: 3, width: 3, height: 2, delayMs: 40, disposeOp: 1, blendOp: 1 },
        { x: 5, y: 0, width: 1, height: 4, delayMs: 7, disposeOp: 2, blendOp: 0 },
      ],
    );
    for (const [i, f] of frames.entries()) {
      const chunks = readChunks(f.png);
      t.same(f.png.subarray(0, 8), Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), 'signature');
      t.same(
        chunks.map((c) => c.type).filter((ty, j, a) => ty !== 'IDAT' || a[j - 1] !== 'IDAT'),
        ['IHDR', 'gAMA', 'sRGB', 'IDAT', 'IEND'],
        'chunk order; tEXt dropped',
      );
      t.ok(chunks.filter((c) => c.type === 'IDAT').length > 1, 'fdAT pieces became IDATs');
      // Every CRC in the frame PNG is correct.
      let off = 8;
      for (const c of chunks) {
        t.equal(
          f.png.readUInt32BE(off + 8 + c.data.length),
          crc32(f.png.subarray(off + 4, off + 8 + c.data.length)),
          `frame ${i} ${c.type} CRC`,
        );
        off += 12 + c.data.length;
      }
      const meta = await sharp(f.png).metadata();
      t.same([meta.width, meta.height], [f.width, f.height], `frame ${i} decodes to its own size`);
      t.same((await decode(f.png)).data, input[i].data, `frame ${i} pixels`);
    }
  }
});

t.test('palette APNG: PLTE and tRNS travel with every frame', async (t) => {
  // A palette PNG from sharp, made into two frames: the default image, and the same data as fdAT.
  const raw = Buffer.from([
    255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 255, 255, 0, 255, 10, 20, 30, 200, 255, 0, 0, 255,
  ]);
  const pal = await sharp(raw, { raw: { width: 3, height: 2, channels: 4 } })
    .png({ palette: true, colours: 8, dither: 0 })
    .toBuffer();
  const cs = readChunks(pal);
  t.ok(cs.some((c) => c.type === 'PLTE') && cs.some((c) => c.type === 'tRNS'), 'sharp wrote PLTE and tRNS');
  const fctl = (seq: number) => {
    const d = Buffer.alloc(26);
    [seq, 3, 2, 0, 0].forEach((v, i) => d.writeUInt32BE(v, i * 4));
    d.writeUInt16BE(1, 20); // 1/0 s: den 0 means 1/100
    return { type: 'fcTL', data: d };
  };
  const idat = Buffer.concat(cs.filter((c) => c.type === 'IDAT').map((c) => c.data));
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(2, 0);
  const apng = writeChunks([
    cs[0],
    { type: 'acTL', data: actl },
    ...cs.filter((c) => !['IHDR', 'IDAT', 'IEND'].includes(c.type)),
    fctl(0),
    ...cs.filter((c) => c.type === 'IDAT'),
    fctl(1),
    { type: 'fdAT', data: Buffer.concat([Buffer.from([0, 0, 0, 2]), idat]) },
    cs[cs.length - 1],
  ]);
  const split = splitApngFrames(apng, 10);
  t.same(
    split.frames.map((f) => f.delayMs),
    [10, 10],
  );
  t.same(
    readChunks(split.frames[1].png).map((c) => c.type),
    ['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND'],
    'pHYs is not copied',
  );
  const want = (await decode(pal)).data;
  t.same((await decode(split.frames[1].png)).data, want, 'fdAT frame decodes like the original');
  const out = await composeApng(split, decode);
  t.ok(out.data.subarray(24).equals(want), 'composed page 1');
  t.ok(split.frames[0].png.equals(split.frames[0].png), 'png builds the same bytes on each access');
});

t.test('frame data that does not decode is corrupt', async (t) => {
  const bad = edit(threeFrames(0), (cs) => void cs.find((c) => c.type === 'fdAT')!.data.fill(0x55, 4));
  const split = splitApngFrames(bad, 10); // the chunk structure is fine
  await t.rejects(composeApng(split, decode), corruptRe);
  // Frame 0 is still fine on its own.
  t.equal((await composeApng(split, decode, { only: 0 })).pages, 1);
});

t.test('composeApng: dispose_op', async (t) => {
  const cases: [0 | 1 | 2, RGBA, string][] = [
    [0, GREEN, 'NONE keeps the frame'],
    [1, CLEAR, 'BACKGROUND clears to transparent black'],
    [2, RED, 'PREVIOUS restores what was there'],
  ];
  for (const [op, want, name] of cases) {
    const out = await composeApng(splitApngFrames(threeFrames(op), 10), decode);
    t.same([out.width, out.height, out.pages, out.data.length], [4, 4, 3, 4 * 4 * 4 * 3]);
    t.same(px(out, 0, 1, 1), RED, 'page 0');
    t.same(px(out, 1, 1, 1), GREEN, 'page 1: green inside its rectangle');
    t.same(px(out, 1, 2, 2), GREEN);
    t.same(px(out, 1, 0, 0), RED, 'page 1: red outside it');
    t.same(px(out, 1, 3, 3), RED);
    t.same(px(out, 2, 0, 0), BLUE, 'page 2: blue pixel');
    t.same(px(out, 2, 1, 1), want, name);
    t.same(px(out, 2, 2, 2), want, name);
    t.same(px(out, 2, 3, 3), RED, 'outside the disposed rectangle');
    t.same(out.delays, [100, 40, 0], 'delays');
  }
  // PREVIOUS on frame 0 acts as BACKGROUND.
  const out = await composeApng(
    splitApngFrames(
      encodeApng([frame(3, 3, RED, { disposeOp: 2 }), frame(1, 1, GREEN, { x: 1, y: 1, blendOp: 1 })], {
        width: 3,
        height: 3,
      }),
      10,
    ),
    decode,
  );
  t.same(px(out, 1, 0, 0), CLEAR, 'frame 0 PREVIOUS -> cleared');
  t.same(px(out, 1, 1, 1), GREEN);
  // PREVIOUS twice in a row restores each frame's own saved region.
  const chain = await composeApng(
    splitApngFrames(
      encodeApng(
        [
          frame(3, 1, RED),
          frame(2, 1, GREEN, { disposeOp: 2 }),
          frame(1, 1, BLUE, { x: 2, disposeOp: 2 }),
          frame(1, 1, GREEN, { x: 1, blendOp: 1 }),
        ],
        { width: 3, height: 1 },
      ),
      10,
    ),
    decode,
  );
  t.same(
    [0, 1, 2].map((x) => px(chain, 3, x, 0)),
    [RED, GREEN, RED],
    'chained PREVIOUS',
  );
});

t.test('composeApng: blend_op with half-transparent pixels', async (t) => {
  const half: RGBA = [0, 0, 255, 128];
  const overOpaque = await composeApng(
    splitApngFrames(
      encodeApng([frame(2, 2, RED), frame(1, 1, half, { x: 1, y: 1, blendOp: 1 }), frame(1, 1, half, { blendOp: 0 })], {
        width: 2,
        height: 2,
      }),
      10,
    ),
    decode,
  );
  close(t, px(overOpaque, 1, 1, 1), [127, 0, 128, 255], 'OVER onto opaque red');
  t.same(px(overOpaque, 1, 0, 0), RED, 'outside the rectangle');
  t.same(px(overOpaque, 2, 0, 0), half, 'SOURCE overwrites, alpha included');
  // OVER onto a half-transparent canvas: out_a = sa + da(1-sa), out_c = (cs·sa + cd·da(1-sa)) / out_a.
  const dst: RGBA = [255, 40, 0, 100],
    src: RGBA = [10, 200, 255, 160];
  const out = await composeApng(
    splitApngFrames(encodeApng([frame(1, 1, dst), frame(1, 1, src, { blendOp: 1 })], { width: 1, height: 1 }), 10),
    decode,
  );
  const sa = src[3] / 255,
    da = dst[3] / 255,
    oa = sa + da * (1 - sa);
  const want = [0, 1, 2]
    .map((k) => Math.round((src[k] * sa + dst[k] * da * (1 - sa)) / oa))
    .concat(Math.round(oa * 255)) as RGBA;
  close(t, px(out, 1, 0, 0), want, 'straight-alpha OVER');
  // Many (source, canvas) pairs at once: every pixel against the float formula, ±1.
  const W = 64,
    H = 64,
    dd = Buffer.alloc(W * H * 4),
    ss = Buffer.alloc(W * H * 4);
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256;
  for (let i = 0; i < dd.length; i++) [dd[i], ss[i]] = [rnd(), rnd()];
  const many = await composeApng(
    splitApngFrames(
      encodeApng(
        [
          { data: dd, width: W, height: H },
          { data: ss, width: W, height: H, blendOp: 1 },
        ],
        { width: W, height: H },
      ),
      10,
    ),
    decode,
  );
  let off = 0;
  for (let p = 0; p < W * H * 4; p += 4) {
    const a = ss[p + 3] / 255,
      b = dd[p + 3] / 255,
      o = a + b * (1 - a);
    const want =
      o === 0 ? [0, 0, 0, 0] : [0, 1, 2].map((k) => (ss[p + k] * a + dd[p + k] * b * (1 - a)) / o).concat(o * 255);
    // A fully transparent result keeps whatever colour the canvas had: only alpha matters then.
    const got = [...many.data.subarray(W * H * 4 + p, W * H * 4 + p + 4)];
    if (!(o === 0 ? got[3] === 0 : got.every((v, k) => Math.abs(v - want[k]) <= 1))) off++;
  }
  t.equal(off, 0, `OVER within ±1 on all ${W * H} pixel pairs`);
  // Fully transparent source pixels leave the canvas; SOURCE with them clears it.
  const clear = await composeApng(
    splitApngFrames(
      encodeApng([frame(1, 1, RED), frame(1, 1, CLEAR, { blendOp: 1 }), frame(1, 1, CLEAR, { blendOp: 0 })], {
        width: 1,
        height: 1,
      }),
      10,
    ),
    decode,
  );
  t.same([px(clear, 1, 0, 0), px(clear, 2, 0, 0)], [RED, CLEAR], 'transparent OVER vs SOURCE');
});

t.test('composeApng: sub-rectangles, only, delays', async (t) => {
  const split = splitApngFrames(
    encodeApng(
      [
        frame(5, 4, BLUE, { delayMs: 30 }),
        frame(2, 3, GREEN, { x: 3, y: 1, delayMs: 60, disposeOp: 1 }),
        frame(1, 1, RED, { x: 4, y: 3, delayMs: 90, disposeOp: 2 }),
        frame(3, 1, [0, 0, 0, 128], { x: 1, y: 0, delayMs: 120, blendOp: 1 }),
      ],
      { width: 5, height: 4 },
    ),
    10,
  );
  const full = await composeApng(split, decode);
  t.same(full.delays, [30, 60, 90, 120]);
  for (let y = 0; y < 4; y++)
    for (let x = 0; x < 5; x++) t.same(px(full, 1, x, y), x >= 3 && y >= 1 ? GREEN : BLUE, `page 1 (${x},${y})`);
  t.same(px(full, 2, 3, 1), CLEAR, 'page 2: frame 1 rectangle cleared');
  t.same(px(full, 2, 4, 3), RED, 'page 2: red at (4,3)');
  t.same(px(full, 2, 2, 1), BLUE);
  t.same(px(full, 3, 4, 3), CLEAR, 'page 3: frame 2 rectangle restored to the cleared state');
  close(t, px(full, 3, 1, 0), [0, 0, 127, 255], 'page 3: half black over blue');
  t.same(px(full, 3, 0, 0), BLUE);
  for (let i = 0; i < split.frames.length; i++) {
    const one = await composeApng(split, decode, { only: i });
    t.same([one.pages, one.width, one.height, one.delays], [1, 5, 4, [split.frames[i].delayMs]], `only ${i}: one page`);
    t.ok(one.data.equals(full.data.subarray(i * 5 * 4 * 4, (i + 1) * 5 * 4 * 4)), `only ${i} equals full page ${i}`);
  }
  await t.rejects(composeApng(split, decode, { only: 4 }), RangeError);
  // delay_den 0 means hundredths of a second.
  const den0 = edit(threeFrames(0), (cs) => {
    nthFcTL(cs, 1).writeUInt16BE(7, 20);
    nthFcTL(cs, 1).writeUInt16BE(0, 22);
    nthFcTL(cs, 2).writeUInt16BE(1, 20);
    nthFcTL(cs, 2).writeUInt16BE(3, 22);
  });
  t.same(
    splitApngFrames(den0, 10).frames.map((f) => f.delayMs),
    [100, 70, 333],
    'delay_den 0 and rounding',
  );
});

t.test('default image that is not a frame', async (t) => {
  const split = splitApngFrames(threeFrames(2, { defaultImageIsFrame: false }), 10);
  t.equal(split.info.defaultIsFrame, false);
  t.equal(split.frames.length, 3);
  const out = await composeApng(split, decode);
  t.equal(out.pages, 3);
  t.same(
    [px(out, 0, 0, 0), px(out, 1, 1, 1), px(out, 2, 0, 0), px(out, 2, 1, 1)],
    [RED, GREEN, BLUE, RED],
    'no grey default image anywhere',
  );
  const withDefault = await composeApng(splitApngFrames(threeFrames(2), 10), decode);
  t.ok(out.data.equals(withDefault.data), 'same animation as when the default image is frame 0');
});

t.test('limits and malformed input', async (t) => {
  const apng = threeFrames(1, { defaultImageIsFrame: false });
  t.throws(() => splitApngFrames(apng, 2), /^too many frames/, 'maxFrames exceeded');
  t.equal(splitApngFrames(apng, 3).frames.length, 3, 'maxFrames reached exactly');
  for (const [png, name] of [
    [apng, 'default image not a frame'],
    [threeFrames(0, { chunkSize: 5 }), 'default image is a frame'],
  ] as const) {
    // Truncated at every offset: always 'corrupt APNG', never another error, never a hang.
    let bad = 0;
    for (let n = 0; n < png.length; n++) {
      const cut = png.subarray(0, n);
      try {
        splitApngFrames(cut, 10);
      } catch (e) {
        if (e instanceof Error && corruptRe.test(e.message)) continue;
      }
      bad++;
      t.fail(`${name}: cut at ${n}`);
    }
    t.equal(bad, 0, `${name}: all ${png.length} truncations are corrupt`);
    for (const n of [0, 7, 8, 20, 33, 40, png.length - 12, png.length - 1]) {
      const cut = png.subarray(0, Math.max(0, n));
      t.doesNotThrow(() => isAnimatedPng(cut), `isAnimatedPng cut ${n}`);
      try {
        readApngInfo(cut);
      } catch (e) {
        t.match((e as Error).message, corruptRe, `readApngInfo cut ${n}`);
      }
    }
  }
  const edits: [string, (cs: RawChunk[]) => RawChunk[] | void][] = [
    ['rectangle past the right edge', (cs) => void nthFcTL(cs, 1).writeUInt32BE(3, 12)],
    ['rectangle past the bottom', (cs) => void nthFcTL(cs, 1).writeUInt32BE(4, 8)],
    ['huge x offset', (cs) => void nthFcTL(cs, 2).writeUInt32BE(0xffffffff, 12)],
    ['zero width', (cs) => void nthFcTL(cs, 2).writeUInt32BE(0, 4)],
    ['fcTL sequence', (cs) => void nthFcTL(cs, 1).writeUInt32BE(9, 0)],
    ['fdAT sequence', (cs) => void cs.find((c) => c.type === 'fdAT')!.data.writeUInt32BE(0, 0)],
    ['dispose_op 3', (cs) => void (nthFcTL(cs, 0)[24] = 3)],
    ['blend_op 2', (cs) => void (nthFcTL(cs, 0)[25] = 2)],
    ['num_frames too high', (cs) => void cs[1].data.writeUInt32BE(4, 0)],
    ['num_frames too low', (cs) => void cs[1].data.writeUInt32BE(2, 0)],
    ['no IEND', (cs) => cs.slice(0, -1)],
    [
      'fcTL without data',
      (cs) =>
        void cs.splice(
          cs.findIndex((c) => c.type === 'fdAT'),
          1,
        ),
    ],
    [
      'fdAT before IDAT',
      (cs) =>
        void cs.splice(
          cs.findIndex((c) => c.type === 'IDAT'),
          0,
          ...cs.splice(
            cs.findIndex((c) => c.type === 'fcTL'),
            2,
          ),
        ),
    ],
    ['IDAT after fdAT', (cs) => void cs.splice(-1, 0, { type: 'IDAT', data: Buffer.alloc(3) })],
    ['fcTL length', (cs) => void (cs.find((c) => c.type === 'fcTL')!.data = Buffer.alloc(25))],
    ['bad chunk type', (cs) => void cs.splice(3, 0, { type: 'a1b2', data: Buffer.alloc(0) })],
  ];
  for (const [name, fn] of edits) throwsCorrupt(t, () => splitApngFrames(edit(apng, fn), 10), name);
  // The default-image frame must cover the canvas.
  const small = edit(threeFrames(0), (cs) => void nthFcTL(cs, 0).writeUInt32BE(3, 4));
  throwsCorrupt(t, () => splitApngFrames(small, 10), 'default frame smaller than the canvas');
  // fcTL CRC damaged (edit() would fix it, so flip a byte in place).
  const crc = Buffer.from(apng);
  crc[crc.indexOf('fcTL', 0, 'latin1') + 4 + 5] ^= 0x01;
  throwsCorrupt(t, () => splitApngFrames(crc, 10), 'fcTL CRC');
  throwsCorrupt(t, () => splitApngFrames(Buffer.from('not a png at all'), 10), 'no signature');
  const plain = await sharp({ create: { width: 2, height: 2, channels: 3, background: 'red' } })
    .png()
    .toBuffer();
  throwsCorrupt(t, () => splitApngFrames(plain, 10), 'plain PNG');
  // Random byte damage: either a clean split or 'corrupt APNG', nothing else.
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  let other = 0;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(apng);
    for (let k = 0; k < 3; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    try {
      splitApngFrames(b, 10);
    } catch (e) {
      if (!(e instanceof Error && (corruptRe.test(e.message) || e.message.startsWith('too many frames')))) other++;
    }
  }
  t.equal(other, 0, 'random damage never throws another kind of error');
});

t.test('a decode callback returning the wrong size is corrupt', async (t) => {
  const split = splitApngFrames(threeFrames(0), 10);
  await t.rejects(
    composeApng(split, async () => ({ data: Buffer.alloc(4), width: 1, height: 1 })),
    corruptRe,
  );
});

t.test('sharp reads the tall output as an animation', async (t) => {
  const split = splitApngFrames(threeFrames(1), 10);
  const { data, width, height, pages, delays } = await composeApng(split, decode);
  const out = await sharp(data, { raw: { width, height: height * pages, channels: 4, pageHeight: height } })
    .webp({ delay: delays, loop: split.info.numPlays })
    .toBuffer();
  const meta = await sharp(out, { animated: true }).metadata();
  t.equal(meta.pages, split.frames.length, 'pages');
  t.equal(meta.pageHeight, 4);
  t.equal(meta.loop, 5);
});
