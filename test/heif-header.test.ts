// The HEIF header reader against real files from heif-enc (libheif 1.15, x265) and sharp (AVIF),
// real files given irot/imir by test/helpers/heif-edit.ts and checked by decoding them with
// heif-convert, and 2-tile grid files built here from two real HEVC tiles (heif-enc 1.15 cannot
// write a multi-tile grid; it wraps an image under 64 pixels on a side in a 1x1 grid of a padded tile).
// Hostile input: every prefix, every single-byte change to meta, garbage, a huge declared ispe.
import t from 'tap';
import sharp from 'sharp';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heifBrandType, readHeifHeader, type HeifHeader } from '../workers/image/heif-header.js';
import { withHeifTransforms } from './helpers/heif-edit.js';

const dir = mkdtempSync(join(tmpdir(), 'heif-header-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

type Rgb = [number, number, number];
const BLUE: Rgb = [0, 0, 255];
const RED: Rgb = [255, 0, 0];
const WHITE: Rgb = [255, 255, 255];

/** A w x h PNG of `fill` with a `mark` block in the top-left corner (8 columns, half the height). */
async function cornerPng(w: number, h: number, mark: Rgb, fill: Rgb): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < 8 && y < h / 2 ? mark : fill, (y * w + x) * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

let seq = 0;
async function heifEnc(png: Buffer): Promise<Buffer> {
  const name = join(dir, `in-${seq++}`);
  await sharp(png).toFile(`${name}.png`);
  execFileSync('heif-enc', ['-q', '90', `${name}.png`, '-o', `${name}.heic`], { stdio: 'ignore' });
  return readFileSync(`${name}.heic`);
}

/** Decodes with heif-convert (which applies irot/imir) and returns the pixels. */
async function heifDecode(heic: Buffer): Promise<{ width: number; height: number; at: (x: number, y: number) => Rgb }> {
  const name = join(dir, `out-${seq++}`);
  writeFileSync(`${name}.heic`, heic);
  execFileSync('heif-convert', [`${name}.heic`, `${name}.png`], { stdio: 'ignore' });
  const { data, info } = await sharp(`${name}.png`).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number): Rgb => {
    const i = (y * info.width + x) * 3;
    return [data[i]!, data[i + 1]!, data[i + 2]!];
  };
  return { width: info.width, height: info.height, at };
}

const isBlue = ([r, g, b]: Rgb) => b > 180 && r < 90 && g < 90;
const isRed = ([r, g, b]: Rgb) => r > 180 && g < 90 && b < 90;

// --- byte builders for the synthetic files ---
const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const text = (s: string) => Buffer.from(s, 'latin1');
const box = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(8 + body.length), text(type), body]);
};
const fullBox = (type: string, version: number, flags: number, ...parts: Buffer[]) =>
  box(type, u32(((version << 24) | flags) >>> 0), ...parts);
const ftyp = (major: string, ...compatible: string[]) => box('ftyp', text(major), u32(0), ...compatible.map(text));

/** Offset of the first `type` box header (its size field) in b. */
function boxAt(b: Buffer, type: string): number {
  const at = b.indexOf(text(type));
  if (at < 4) throw new Error(`no ${type} box`);
  return at - 4;
}
const boxBytes = (b: Buffer, type: string) => {
  const at = boxAt(b, type);
  return b.subarray(at, at + b.readUInt32BE(at));
};
/** The coded data of a one-image heif-enc file: everything in its mdat. */
const mdatBody = (b: Buffer) => boxBytes(b, 'mdat').subarray(8);

/**
 * A 128x64 grid of two 64x64 HEVC tiles (left, right). Grid data in idat with absolute iloc
 * offsets and 16-bit grid fields, or in mdat with base_offset and 32-bit grid fields.
 */
function gridFile(left: Buffer, right: Buffer, gridInIdat: boolean): Buffer {
  const a = mdatBody(left);
  const b = mdatBody(right);
  const grid = gridInIdat
    ? Buffer.concat([Buffer.from([0, 0, 0, 1]), u16(128), u16(64)])
    : Buffer.concat([Buffer.from([0, 1, 0, 1]), u32(128), u32(64)]);
  const meta = (dataStart: number) => {
    // offset_size 4, length_size 4, base_offset_size 4 or 0, index_size 0.
    const base = (n: number) => (gridInIdat ? Buffer.alloc(0) : u32(n));
    const abs = (n: number) => u32(gridInIdat ? dataStart + n : n);
    const iloc = fullBox(
      'iloc',
      1,
      0,
      u16(gridInIdat ? 0x4400 : 0x4440),
      u16(3),
      ...[u16(1), u16(gridInIdat ? 1 : 0), u16(0), base(dataStart), u16(1)],
      ...[gridInIdat ? u32(0) : abs(a.length + b.length), u32(grid.length)],
      ...[u16(2), u16(0), u16(0), base(dataStart), u16(1), abs(0), u32(a.length)],
      ...[u16(3), u16(0), u16(0), base(dataStart), u16(1), abs(a.length), u32(b.length)],
    );
    const infe = (id: number, type: string, hidden: number) =>
      fullBox('infe', 2, hidden, u16(id), u16(0), text(type), Buffer.from([0]));
    return fullBox(
      'meta',
      0,
      0,
      fullBox('hdlr', 0, 0, u32(0), text('pict'), u32(0), u32(0), u32(0), Buffer.from([0])),
      fullBox('pitm', 0, 0, u16(1)),
      iloc,
      fullBox('iinf', 0, 0, u16(3), infe(1, 'grid', 0), infe(2, 'hvc1', 1), infe(3, 'hvc1', 1)),
      fullBox('iref', 0, 0, box('dimg', u16(1), u16(2), u16(2), u16(3))),
      box(
        'iprp',
        box(
          'ipco',
          boxBytes(left, 'hvcC'),
          boxBytes(right, 'hvcC'),
          fullBox('ispe', 0, 0, u32(64), u32(64)),
          fullBox('ispe', 0, 0, u32(128), u32(64)),
        ),
        // Grid: ispe (4). Tiles: their hvcC (essential) and ispe (3).
        fullBox(
          'ipma',
          0,
          0,
          u32(3),
          ...[u16(1), Buffer.from([1, 4])],
          ...[u16(2), Buffer.from([2, 0x81, 3])],
          ...[u16(3), Buffer.from([2, 0x82, 3])],
        ),
      ),
      ...(gridInIdat ? [box('idat', grid)] : []),
    );
  };
  const head = ftyp('heic', 'mif1', 'heic');
  // The meta box's size does not depend on the offsets in it, so the data starts right after it.
  const dataStart = head.length + meta(0).length + 8;
  return Buffer.concat([head, meta(dataStart), box('mdat', a, b, ...(gridInIdat ? [] : [grid]))]);
}

/** Calls readHeifHeader, turning any throw into its message; a non-Error throw fails the test. */
function attempt(b: Uint8Array): HeifHeader | string {
  try {
    return readHeifHeader(b);
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`threw a non-Error: ${String(err)}`);
    return err.message;
  }
}

const blueCorner = await cornerPng(64, 32, BLUE, WHITE);
const small = await heifEnc(blueCorner); // 64x32: libheif 1.15 wraps it in a 1x1 grid (height under 64)
const square = await heifEnc(await cornerPng(128, 64, BLUE, WHITE)); // a plain hvc1 item
const tileBlue = await heifEnc(await cornerPng(64, 64, BLUE, BLUE));
const tileRed = await heifEnc(await cornerPng(64, 64, RED, RED));

t.test('heifBrandType: the most specific brand wins, major first within a tier', async (t) => {
  t.equal(heifBrandType(small), 'image/heic');
  t.equal(heifBrandType(ftyp('mif1', 'mif1', 'heic')), 'image/heic');
  t.equal(heifBrandType(ftyp('mif1', 'miaf')), 'image/heif');
  t.equal(heifBrandType(ftyp('msf1', 'hevc')), 'image/heic-sequence');
  t.equal(heifBrandType(ftyp('msf1', 'iso8')), 'image/heif-sequence');
  t.equal(heifBrandType(ftyp('msf1', 'mif1')), 'image/heif-sequence');
  t.equal(heifBrandType(ftyp('avis', 'msf1', 'hevc')), 'image/avif');
  t.equal(heifBrandType(ftyp('heix', 'mif1')), 'image/heic');
  t.equal(heifBrandType(ftyp('isom', 'mp41')), null);
  t.equal(heifBrandType(box('free', u32(0), u32(0))), null);
  t.equal(heifBrandType(new Uint8Array(0)), null);
});

t.test('a plain HEIC from heif-enc', async (t) => {
  t.same(readHeifHeader(square), {
    type: 'image/heic',
    width: 128,
    height: 64,
    displayWidth: 128,
    displayHeight: 64,
    rotation: 0,
    mirror: 'none',
    codec: 'hvc1',
    hasSequence: false,
    hasAlpha: false,
  });
  t.equal(readHeifHeader(square).grid, undefined);
});

t.test("heif-enc's 64x32: a 1x1 grid in idat (construction_method 1)", async (t) => {
  const h = readHeifHeader(small);
  t.match(h, { type: 'image/heic', codec: 'grid', width: 64, height: 32, rotation: 0, mirror: 'none' });
  t.same(h.grid, { rows: 1, columns: 1, outputWidth: 64, outputHeight: 32, tiles: 1 });
});

t.test('irot 90 (anticlockwise): header and heif-convert agree', async (t) => {
  const rotated = withHeifTransforms(small, { rotation: 90 });
  const h = readHeifHeader(rotated);
  t.match(h, { width: 64, height: 32, displayWidth: 32, displayHeight: 64, rotation: 90, mirror: 'none' });
  const img = await heifDecode(rotated);
  t.same([img.width, img.height], [32, 64]);
  // Anticlockwise: the top-left corner block ends up bottom left, lying on its side.
  t.ok(isBlue(img.at(4, 61)), `bottom left is blue: ${img.at(4, 61)}`);
  t.notOk(isBlue(img.at(28, 61)), `bottom right is not blue: ${img.at(28, 61)}`);
  t.notOk(isBlue(img.at(4, 2)), `top left is not blue: ${img.at(4, 2)}`);
  t.match(readHeifHeader(withHeifTransforms(square, { rotation: 270 })), { rotation: 270, displayWidth: 64 });
  t.match(readHeifHeader(withHeifTransforms(square, { rotation: 180 })), { rotation: 180, displayWidth: 128 });
});

t.test('imir 0 exchanges top and bottom, imir 1 left and right (as libheif decodes them)', async (t) => {
  const horizontal = withHeifTransforms(square, { mirror: 0 });
  t.match(readHeifHeader(horizontal), { mirror: 'horizontal', rotation: 0, displayWidth: 128, displayHeight: 64 });
  const hz = await heifDecode(horizontal);
  t.ok(isBlue(hz.at(2, 60)), `bottom left is blue: ${hz.at(2, 60)}`);
  t.notOk(isBlue(hz.at(2, 4)), `top left is not blue: ${hz.at(2, 4)}`);

  const vertical = withHeifTransforms(square, { mirror: 1 });
  t.match(readHeifHeader(vertical), { mirror: 'vertical' });
  const v = await heifDecode(vertical);
  t.ok(isBlue(v.at(125, 4)), `top right is blue: ${v.at(125, 4)}`);
  t.notOk(isBlue(v.at(2, 4)), `top left is not blue: ${v.at(2, 4)}`);

  t.match(readHeifHeader(withHeifTransforms(small, { rotation: 270, mirror: 1 })), {
    rotation: 270,
    mirror: 'vertical',
    displayWidth: 32,
    displayHeight: 64,
  });
});

t.test('a 2-tile grid built from real HEVC tiles', async (t) => {
  for (const gridInIdat of [true, false]) {
    const file = gridFile(tileBlue, tileRed, gridInIdat);
    const h = readHeifHeader(file);
    t.match(h, { codec: 'grid', width: 128, height: 64 }, `grid in ${gridInIdat ? 'idat' : 'mdat'}`);
    t.same(h.grid, { rows: 1, columns: 2, outputWidth: 128, outputHeight: 64, tiles: 2 });
    const img = await heifDecode(file);
    t.same([img.width, img.height], [128, 64]);
    t.ok(isBlue(img.at(10, 32)) && isRed(img.at(118, 32)), `blue then red: ${img.at(10, 32)} ${img.at(118, 32)}`);
    // heif-edit moves iloc offsets (absolute, or through base_offset) past the inserted bytes.
    const rotated = withHeifTransforms(file, { rotation: 90, mirror: 0 });
    t.match(readHeifHeader(rotated), { rotation: 90, mirror: 'horizontal', displayWidth: 64, displayHeight: 128 });
    const r = await heifDecode(rotated);
    t.same([r.width, r.height], [64, 128]);
    // In ipma order: turned anticlockwise (blue tile to the bottom), then top and bottom exchanged.
    t.ok(isBlue(r.at(32, 10)) && isRed(r.at(32, 118)), `blue above red: ${r.at(32, 10)} ${r.at(32, 118)}`);
  }
});

t.test('a grid whose ispe disagrees with its output size is refused', async (t) => {
  const file = Buffer.from(gridFile(tileBlue, tileRed, true));
  const ispe = file.lastIndexOf(text('ispe'));
  file.writeUInt32BE(256, ispe + 8);
  t.throws(() => readHeifHeader(file), { message: 'HEIF: grid ispe 256x64 does not match its output size 128x64' });
});

t.test('AVIF from sharp', async (t) => {
  const avif = await sharp(blueCorner).avif().toBuffer();
  t.match(readHeifHeader(avif), { type: 'image/avif', codec: 'av01', width: 64, height: 32, rotation: 0 });
});

t.test('an alpha plane (an auxl image with an alpha auxC) is found', async (t) => {
  const rgba = await sharp({
    create: { width: 128, height: 64, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } },
  })
    .png()
    .toBuffer();
  t.equal(readHeifHeader(await heifEnc(rgba)).hasAlpha, true, 'heif-enc from an RGBA PNG');
  t.equal(readHeifHeader(await sharp(rgba).avif().toBuffer()).hasAlpha, true, 'AVIF with alpha from sharp');
  t.equal(readHeifHeader(square).hasAlpha, false, 'an opaque HEIC has none');
});

t.test('a huge declared ispe is reported, not judged', async (t) => {
  const file = Buffer.from(square);
  const ispe = boxAt(file, 'ispe');
  file.writeUInt32BE(100000, ispe + 12);
  file.writeUInt32BE(100000, ispe + 16);
  t.match(readHeifHeader(file), { width: 100000, height: 100000, displayWidth: 100000 });
});

t.test('every prefix throws an Error or returns; a cut inside meta throws', async (t) => {
  for (const file of [small, square]) {
    const metaEnd = boxAt(file, 'meta') + file.readUInt32BE(boxAt(file, 'meta'));
    const full = readHeifHeader(file);
    let bad = 0;
    for (let n = 0; n <= file.length; n++) {
      const r = attempt(file.subarray(0, n));
      const ok =
        n < metaEnd ? typeof r === 'string' && r.startsWith('HEIF: ') : JSON.stringify(r) === JSON.stringify(full);
      if (!ok) bad++;
    }
    t.equal(bad, 0, `prefixes of a ${file.length}-byte file (meta ends at ${metaEnd})`);
  }
  t.equal(
    attempt(square.subarray(0, 100)),
    `HEIF: meta box (${square.readUInt32BE(boxAt(square, 'meta'))} bytes) is truncated`,
  );
});

t.test('every single-byte change inside meta ends in an Error or a header', async (t) => {
  const metaAt = boxAt(small, 'meta');
  const metaEnd = metaAt + small.readUInt32BE(metaAt);
  let nonHeif = 0;
  for (let at = metaAt; at < metaEnd; at++) {
    for (const value of [0x00, 0x01, 0x7f, 0xff]) {
      const b = Buffer.from(small);
      b[at] = value;
      const r = attempt(b);
      if (typeof r === 'string' && !r.startsWith('HEIF: ')) nonHeif++;
    }
  }
  t.equal(nonHeif, 0, "all failures are the parser's own errors");
});

t.test('garbage and malformed structure', async (t) => {
  t.throws(() => readHeifHeader(Buffer.from('not an image at all, just text')), {
    message: 'HEIF: not a HEIF file (no ftyp box with a HEIF or AVIF brand)',
  });
  const head = ftyp('heic', 'mif1', 'heic');
  t.throws(() => readHeifHeader(Buffer.concat([head, Buffer.alloc(64, 0xff)])), /HEIF: /);
  t.throws(() => readHeifHeader(Buffer.concat([head, box('mdat', Buffer.alloc(16))])), {
    message: `HEIF: no meta box in the ${head.length + 24} bytes given`,
  });
  // mdat first, and only a prefix of it in the buffer.
  const mdatFirst = Buffer.concat([head, u32(1 << 20), text('mdat'), Buffer.alloc(100)]);
  t.throws(() => readHeifHeader(mdatFirst), {
    message: `HEIF: no meta box in the first ${mdatFirst.length} bytes ('mdat' at ${head.length} runs past them)`,
  });
  const vide = Buffer.from(square);
  vide.write('vide', vide.indexOf(text('pict')), 'latin1');
  t.throws(() => readHeifHeader(vide), { message: "HEIF: meta handler is 'vide', not 'pict'" });
  const noPitm = Buffer.from(square);
  noPitm.write('xitm', noPitm.indexOf(text('pitm')), 'latin1');
  t.throws(() => readHeifHeader(noPitm), { message: 'HEIF: meta has no pitm box' });
  const tooMany = Buffer.from(square);
  tooMany.writeUInt32BE(200000, boxAt(tooMany, 'ipma') + 12);
  t.throws(() => readHeifHeader(tooMany), { message: 'HEIF: ipma lists 200000 items, more than 100000' });
  // iloc with every field size 0: extents take no bytes, so only the extent cap stops the walk.
  const emptyExtents = Buffer.from(small);
  const iloc = boxAt(emptyExtents, 'iloc');
  emptyExtents.writeUInt16BE(0, iloc + 12);
  emptyExtents.writeUInt16BE(0xffff, iloc + 14);
  emptyExtents.fill(0xff, iloc + 16, iloc + emptyExtents.readUInt32BE(iloc));
  t.throws(() => readHeifHeader(emptyExtents), { message: 'HEIF: iloc has more than 100000 extents' });
});

t.test('largesize and size 0 boxes, and a moov box', async (t) => {
  const head = boxBytes(square, 'ftyp');
  const metaAt = boxAt(square, 'meta');
  const meta = boxBytes(square, 'meta');
  const rest = square.subarray(metaAt + meta.length);
  const large = Buffer.alloc(16);
  large.writeUInt32BE(1);
  large.write('meta', 4, 'latin1');
  large.writeBigUInt64BE(BigInt(meta.length + 8), 8);
  const largeMeta = Buffer.concat([head, large, meta.subarray(8), rest]);
  t.match(readHeifHeader(largeMeta), { width: 128, height: 64, codec: 'hvc1' });

  const toEnd = Buffer.from(square);
  toEnd.writeUInt32BE(0, boxAt(toEnd, 'mdat'));
  t.match(readHeifHeader(toEnd), { width: 128, height: 64 });

  const sequence = Buffer.concat([ftyp('msf1', 'msf1', 'hevc'), meta, box('moov', box('mvhd')), rest]);
  t.match(readHeifHeader(sequence), { type: 'image/heic-sequence', hasSequence: true, width: 128 });
});
