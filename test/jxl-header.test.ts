// JPEG XL header reading (workers/image/jxl-header.ts) on real files from libjxl's cjxl, with the
// sizes checked against what djxl decodes; container edits built box by box around a real
// codestream; hostile input (every prefix, garbage, broken boxes); and headers written bit by bit
// for the sizes and fields cjxl does not produce, such as a 100000x100000 bomb.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import sharp from 'sharp';
import { isJxl, readJxlHeader, type JxlHeader } from '../workers/image/jxl-header.js';
import { readApngInfo } from '../workers/image/apng.js';
import { encodeApng } from './helpers/apng-encode.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'jxl-header-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const corruptRe = /^corrupt JPEG XL: /;
function throwsCorrupt(t: Test, fn: () => unknown, message: RegExp, msg: string): void {
  try {
    fn();
    t.fail(`${msg}: did not throw`);
  } catch (e) {
    t.ok(e instanceof Error && corruptRe.test(e.message) && message.test(e.message), `${msg}: ${(e as Error).message}`);
  }
}

/** Either the header of the whole file or an Error of ours; anything else (a RangeError, a hang) fails. */
function headerOrCorrupt(b: Uint8Array): JxlHeader | Error {
  try {
    return readJxlHeader(b);
  } catch (e) {
    if (e instanceof Error && corruptRe.test(e.message)) return e;
    throw e;
  }
}

async function cjxl(input: string, output: string, ...args: string[]): Promise<Buffer> {
  await run('cjxl', [input, output, '-e', '1', '--quiet', ...args]);
  return readFileSync(output);
}
/** What djxl's PNG output holds: its size and whether it still carries an EXIF orientation. */
async function djxlPng(jxl: string): Promise<{ width: number; height: number; orientation?: number }> {
  const png = jxl.replace(/\.jxl$/, '.djxl.png');
  await run('djxl', [jxl, png, '--quiet']);
  const m = await sharp(png).metadata();
  return { width: m.width, height: m.height, orientation: m.orientation };
}
function solidPng(width: number, height: number, file: string): Promise<unknown> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 60 } } })
    .png()
    .toFile(file);
}
const still = (width: number, height: number, container: boolean): JxlHeader => ({
  width,
  height,
  orientation: 1,
  displayWidth: width,
  displayHeight: height,
  container,
  hasAnimation: false,
});

// 256x256: div8 height with ratio 1:1; 1920x1080 and 640x480: 16:9 and 4:3. The x100 sizes are
// every other ratio code, where cjxl uses the ratio only if floor(100 * num / den) is the width
// (133 = floor(133.33), 177 = floor(177.78)): the reader must round the same way. 9000 needs the
// 18-bit U32 branch.
const SIZES: [number, number][] = [
  [64, 32],
  [1, 1],
  [333, 777],
  [256, 256],
  [1920, 1080],
  [640, 480],
  [120, 100],
  [133, 100],
  [150, 100],
  [177, 100],
  [125, 100],
  [200, 100],
  [9000, 2],
];

t.test('cjxl codestreams and containers: the header size is what djxl decodes', async (t) => {
  await Promise.all(
    SIZES.map(async ([w, h]) => {
      const png = join(dir, `${w}x${h}.png`);
      await solidPng(w, h, png);
      const bare = await cjxl(png, join(dir, `${w}x${h}.jxl`), '--container=0');
      const boxed = await cjxl(png, join(dir, `${w}x${h}.box.jxl`), '--container=1');
      const decoded = await djxlPng(join(dir, `${w}x${h}.jxl`));
      t.same([decoded.width, decoded.height], [w, h], `${w}x${h}: djxl decodes the input size`);
      t.ok(isJxl(bare) && isJxl(boxed), `${w}x${h}: both are JPEG XL`);
      t.same(readJxlHeader(bare), still(w, h, false), `${w}x${h}: bare codestream`);
      t.same(readJxlHeader(boxed), still(w, h, true), `${w}x${h}: container`);
    }),
  );
});

t.test('JPEG with EXIF orientation: cjxl moves it into the codestream, djxl applies it', async (t) => {
  // Stored 40x24; orientations 5..8 transpose, so they show as 24x40.
  await Promise.all(
    [1, 2, 3, 4, 5, 6, 7, 8].map(async (orientation) => {
      const jpg = join(dir, `o${orientation}.jpg`);
      await sharp({ create: { width: 40, height: 24, channels: 3, background: { r: 10, g: 200, b: 90 } } })
        .jpeg()
        .withMetadata({ orientation })
        .toFile(jpg);
      const shown = orientation >= 5 ? [24, 40] : [40, 24];
      // Lossless recompression (cjxl's default for JPEG) keeps the Exif and JPEG reconstruction
      // data in boxes, so the output is a container.
      const file = join(dir, `o${orientation}.jxl`);
      const header = readJxlHeader(await cjxl(jpg, file, '--lossless_jpeg=1'));
      t.same(
        header,
        { ...still(40, 24, true), orientation, displayWidth: shown[0], displayHeight: shown[1] },
        `orientation ${orientation}: header`,
      );
      const decoded = await djxlPng(file);
      t.same([decoded.width, decoded.height], shown, `orientation ${orientation}: djxl's PNG is already rotated`);
      t.equal(decoded.orientation, undefined, `orientation ${orientation}: djxl's PNG has no EXIF orientation`);
    }),
  );
  // Reencoding the pixels instead keeps the orientation in the header too.
  const reencoded = readJxlHeader(await cjxl(join(dir, 'o6.jpg'), join(dir, 'o6.px.jxl'), '--lossless_jpeg=0'));
  t.same([reencoded.width, reencoded.height, reencoded.orientation], [40, 24, 6], 'reencoded JPEG: orientation 6');
  // Reconstructing the JPEG from the lossless file gives back the unrotated pixels and the EXIF tag.
  const jpg = join(dir, 'o6.back.jpg');
  await run('djxl', [join(dir, 'o6.jxl'), jpg, '--quiet']);
  const m = await sharp(jpg).metadata();
  t.same([m.width, m.height, m.orientation], [40, 24, 6], 'djxl reconstructs the original 40x24 JPEG with EXIF 6');
});

t.test('an APNG becomes an animated codestream', async (t) => {
  const frame = (r: number) => ({ data: Buffer.alloc(24 * 16 * 4, r), width: 24, height: 16 });
  const apng = join(dir, 'anim.png');
  writeFileSync(apng, encodeApng([frame(40), frame(200)], { width: 24, height: 16 }));
  const header = readJxlHeader(await cjxl(apng, join(dir, 'anim.jxl'), '--container=0', '-d', '0'));
  t.same(header, { ...still(24, 16, false), hasAnimation: true });
  // djxl writes an APNG, whose frames sharp does not count: read its acTL instead.
  await run('djxl', [join(dir, 'anim.jxl'), join(dir, 'anim.djxl.png'), '--quiet']);
  t.equal(readApngInfo(readFileSync(join(dir, 'anim.djxl.png')))?.numFrames, 2, 'djxl decodes two frames');
});

// ---- containers edited box by box around a real codestream ----

function box(type: string, payload: Uint8Array, size = 8 + payload.length): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}
function largeBox(type: string, payload: Uint8Array, size = BigInt(16 + payload.length)): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(1, 0);
  head.write(type, 4, 'latin1');
  head.writeBigUInt64BE(size, 8);
  return Buffer.concat([head, payload]);
}
const jxlp = (index: number, data: Uint8Array, last = false) => {
  const i = Buffer.alloc(4);
  i.writeUInt32BE((index | (last ? 0x80000000 : 0)) >>> 0, 0);
  return box('jxlp', Buffer.concat([i, data]));
};
const SIG = Buffer.from([0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a]);
const FTYP = box('ftyp', Buffer.from('jxl \0\0\0\0jxl ', 'latin1'));
const container = (...boxes: Buffer[]) => Buffer.concat([SIG, FTYP, ...boxes]);

t.test('containers built by hand: jxlp pieces, size 0 and 1 boxes, broken boxes', async (t) => {
  const cs = readFileSync(join(dir, '333x777.jxl'));
  const want = still(333, 777, true);
  // One byte per jxlp box for the header, with an unrelated box in between; then the rest.
  const pieces: Buffer[] = [];
  for (let i = 0; i < 30; i++) pieces.push(jxlp(i, cs.subarray(i, i + 1)));
  pieces.splice(5, 0, box('Exif', Buffer.alloc(10)));
  pieces.push(jxlp(30, cs.subarray(30), true));
  const variants: [string, Buffer][] = [
    ['split into jxlp boxes', container(...pieces)],
    ['jxlc of size 0 (to the end)', container(box('jxlc', cs, 0))],
  ];
  for (const [i, [name, file]] of variants.entries()) {
    // edit-0.jxl is also the prefix test's split container.
    const path = join(dir, `edit-${i}.jxl`);
    writeFileSync(path, file);
    const decoded = await djxlPng(path);
    t.same([decoded.width, decoded.height], [333, 777], `${name}: djxl decodes it`);
    t.same(readJxlHeader(file), want, name);
  }
  // ISO-BMFF puts a 64-bit size after the type. djxl 0.7 reads it wrongly
  // (https://github.com/libjxl/libjxl/issues/1478, fixed later), so no djxl check here.
  t.same(readJxlHeader(container(largeBox('Exif', Buffer.alloc(3)), largeBox('jxlc', cs))), want, '64-bit sizes');
  throwsCorrupt(
    t,
    () => readJxlHeader(container(box('Exif', Buffer.alloc(4), 0), box('jxlc', cs))),
    /no jxlc or jxlp box/,
    'a box of size 0 swallows the codestream box after it',
  );
  throwsCorrupt(t, () => readJxlHeader(container(box('jxlc', cs, 7))), /less than its header/, 'box size 7');
  throwsCorrupt(t, () => readJxlHeader(container(largeBox('jxlc', cs, 15n))), /less than its header/, 'largesize 15');
  throwsCorrupt(
    t,
    () => readJxlHeader(container(box('Exif', Buffer.alloc(8), 0xffffffff), box('jxlc', cs))),
    /no jxlc or jxlp box/,
    'a box running past the end hides the rest',
  );
  throwsCorrupt(
    t,
    () => readJxlHeader(container(largeBox('Exif', Buffer.alloc(8), 2n ** 64n - 1n), box('jxlc', cs))),
    /no jxlc or jxlp box/,
    'largesize 2^64-1',
  );
  throwsCorrupt(t, () => readJxlHeader(container(jxlp(1, cs, true))), /index 1, expected 0/, 'first jxlp index 1');
  throwsCorrupt(
    t,
    () => readJxlHeader(container(jxlp(0, cs.subarray(0, 3)), jxlp(2, cs.subarray(3), true))),
    /index 2, expected 1/,
    'jxlp index gap',
  );
  throwsCorrupt(
    t,
    () => readJxlHeader(container(jxlp(0, cs.subarray(0, 3)), box('jxlc', cs))),
    /jxlc box at \d+ after jxlp/,
    'jxlc after jxlp',
  );
  throwsCorrupt(t, () => readJxlHeader(container(box('jxlp', Buffer.alloc(3)))), /truncated jxlp index/, 'jxlp of 3');
  throwsCorrupt(t, () => readJxlHeader(container(box('jxlc', Buffer.from('PNG')))), /does not start with FF 0A/, 'sig');
  throwsCorrupt(t, () => readJxlHeader(container()), /no jxlc or jxlp box/, 'no codestream box');
  throwsCorrupt(t, () => readJxlHeader(Buffer.concat([container(), Buffer.alloc(5)])), /truncated box header/, '5');
  throwsCorrupt(t, () => readJxlHeader(Buffer.from('GIF89a')), /no JPEG XL signature/, 'GIF');
  t.notOk(isJxl(Buffer.from([0xff])), 'one byte is not JPEG XL');
  t.notOk(isJxl(SIG.subarray(0, 11)), 'a cut signature box is not JPEG XL');
});

t.test('every prefix of a real file is its header or an Error of ours, and longer prefixes stay parsed', async (t) => {
  const files = ['64x32.jxl', '1920x1080.box.jxl', 'o6.jxl', 'anim.jxl', 'edit-0.jxl'];
  for (const name of files) {
    const file = readFileSync(join(dir, name));
    const full = readJxlHeader(file);
    let firstOk = -1,
      failures = 0;
    // Every length through the first 200 bytes (all the headers end there), then in steps.
    for (let n = 0; n <= file.length; n += n < 200 ? 1 : 61) {
      const got = headerOrCorrupt(file.subarray(0, n));
      if (got instanceof Error) {
        failures++;
        if (firstOk >= 0) t.fail(`${name}: prefix ${n} failed after prefix ${firstOk} parsed: ${got.message}`);
      } else {
        if (firstOk < 0) firstOk = n;
        if (JSON.stringify(got) !== JSON.stringify(full)) t.fail(`${name}: prefix ${n} parsed differently`);
      }
    }
    t.ok(
      failures > 0 && firstOk > 0 && firstOk < 200,
      `${name}: ${failures} short prefixes throw, from ${firstOk} bytes on it parses`,
    );
  }
});

/** Least significant bit first, as the JPEG XL bit reader reads. */
class BitWriter {
  private readonly bits: number[] = [];
  write(value: number, n: number): this {
    for (let i = 0; i < n; i++) this.bits.push(Math.floor(value / 2 ** i) % 2);
    return this;
  }
  bool(v: boolean): this {
    return this.write(v ? 1 : 0, 1);
  }
  /** U32 for a SizeHeader dimension: selector, then value - 1 in 9, 13, 18 or 30 bits. */
  dim(v: number): this {
    const sel = [9, 13, 18, 30].findIndex((n) => v - 1 < 2 ** n);
    return this.write(sel, 2).write(v - 1, [9, 13, 18, 30][sel]);
  }
  bytes(): Buffer {
    const out = Buffer.alloc(Math.ceil(this.bits.length / 8));
    this.bits.forEach((b, i) => (out[i >> 3] |= b << (i & 7)));
    return out;
  }
}
const codestream = () => new BitWriter().write(0xff, 8).write(0x0a, 8);

t.test('headers written bit by bit: bombs, limits and the metadata fields', async (t) => {
  // The bomb: ratio 1 (1:1), then all_default metadata.
  const bomb = codestream().bool(false).dim(100000).write(1, 3).bool(true).bytes();
  t.same(readJxlHeader(bomb), still(100000, 100000, false), '100000x100000 bomb, 1:1 ratio');
  t.ok(bomb.length < 10, `declared in ${bomb.length} bytes`);
  const wide = codestream().bool(false).dim(1).write(0, 3).dim(100000).bool(true).bytes();
  t.same(readJxlHeader(wide), still(100000, 1, false), '100000x1, explicit width');
  const max = codestream()
    .bool(false)
    .dim(2 ** 30)
    .write(7, 3)
    .bool(true)
    .bytes();
  t.same(readJxlHeader(max), still(2 ** 31, 2 ** 30, false), 'largest: 2^30 high at 2:1');
  const div8 = codestream().bool(true).write(31, 5).write(0, 3).write(0, 5).bool(true).bytes();
  t.same(readJxlHeader(div8), still(8, 256, false), 'div8: 8x256');
  const rounding = codestream().bool(false).dim(7).write(2, 3).bool(true).bytes();
  t.same(readJxlHeader(rounding), still(8, 7, false), '12:10 of 7 rounds down to 8');

  // extra_fields: orientation, intrinsic size, preview (both layouts), then have_animation.
  const extra = (orientation: number, preview: (w: BitWriter) => BitWriter, animation: boolean) =>
    preview(
      codestream()
        .bool(false)
        .dim(300)
        .write(0, 3)
        .dim(500)
        .bool(false)
        .bool(true)
        .write(orientation - 1, 3),
    )
      .bool(animation)
      .bytes();
  const noPreview = (w: BitWriter) => w.bool(false).bool(false);
  const withIntrinsicAndPreview = (w: BitWriter) =>
    w
      .bool(true) // have_intrinsic_size: a SizeHeader
      .bool(false)
      .dim(30)
      .write(0, 3)
      .dim(50)
      .bool(true) // have_preview: not div8, ysize BitsOffset(12, 1345), ratio 0, xsize BitsOffset(8, 65)
      .bool(false)
      .write(3, 2)
      .write(4000, 12)
      .write(0, 3)
      .write(1, 2)
      .write(200, 8);
  const div8Preview = (w: BitWriter) => w.bool(false).bool(true).bool(true).write(3, 2).write(511, 9).write(5, 3);
  for (const [name, preview] of [
    ['no preview', noPreview],
    ['intrinsic size and preview', withIntrinsicAndPreview],
    ['div8 preview', div8Preview],
  ] as const) {
    const h = readJxlHeader(extra(8, preview, true));
    t.same(
      h,
      {
        width: 500,
        height: 300,
        orientation: 8,
        displayWidth: 300,
        displayHeight: 500,
        container: false,
        hasAnimation: true,
      },
      `${name}: orientation 8, animated`,
    );
    t.equal(readJxlHeader(extra(2, preview, false)).hasAnimation, false, `${name}: not animated`);
    const cut = extra(8, preview, true);
    // The have_animation bit is the last one written: drop the byte that holds it.
    throwsCorrupt(
      t,
      () => readJxlHeader(cut.subarray(0, cut.length - 1)),
      /truncated codestream header/,
      `${name} cut`,
    );
  }
});

t.test('garbage after the signatures throws ours or gives a sane header, and never hangs', async (t) => {
  let seed = 0x9e3779b9;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  let parsed = 0,
    thrown = 0;
  const started = Date.now();
  for (let i = 0; i < 3000; i++) {
    const tail = bytes(Math.floor(random() * 40));
    // Half the containers get a plausible box header, so the walk reaches the codestream.
    const input =
      i % 3 === 0
        ? Buffer.concat([Buffer.from([0xff, 0x0a]), tail])
        : i % 3 === 1
          ? Buffer.concat([SIG, tail])
          : container(box('jxlc', Buffer.concat([Buffer.from([0xff, 0x0a]), tail])));
    const got = headerOrCorrupt(input);
    if (got instanceof Error) {
      thrown++;
      continue;
    }
    parsed++;
    const sane =
      Number.isInteger(got.width) &&
      got.width >= 1 &&
      got.width <= 2 ** 31 &&
      Number.isInteger(got.height) &&
      got.height >= 1 &&
      got.height <= 2 ** 30 &&
      got.orientation >= 1 &&
      got.orientation <= 8 &&
      got.displayWidth * got.displayHeight === got.width * got.height;
    if (!sane) t.fail(`insane header from ${input.toString('hex')}: ${JSON.stringify(got)}`);
  }
  t.ok(parsed > 100 && thrown > 100, `${parsed} parsed, ${thrown} thrown`);
  t.ok(Date.now() - started < 2000, 'in under 2 s');
});
