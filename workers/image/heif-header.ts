// Reads what a HEIF/HEIC/AVIF file says about its primary image (ISO/IEC 23008-12 on ISO-BMFF)
// without decoding anything, so that size limits can be checked before a decoder sees the bytes.
// The input is untrusted and may be only the first few MiB of a file: every length is checked
// against the buffer, every loop advances by at least one box header or is bounded by a count,
// and the nesting is fixed (meta -> iprp -> ipco), so malformed input ends in an Error.

import { childBoxes, fourcc, itemBytes, MAX_ITEMS, parseIloc, Reader, type Box } from './isobmff.js';

export interface HeifHeader {
  /** Brand-derived type: 'image/heic' | 'image/heif' | 'image/heic-sequence' | 'image/heif-sequence' | 'image/avif' */
  type: string;
  /** Primary item's size as coded (ispe), before irot. 0 when absent (a grid without ispe gets its output size). */
  width: number;
  height: number;
  /** Displayed size after irot (90/270 swap). */
  displayWidth: number;
  displayHeight: number;
  /** irot angle * 90, anticlockwise as the spec says. */
  rotation: 0 | 90 | 180 | 270;
  /**
   * The imir mirror axis. 'horizontal' is imir value 0: mirrored about a horizontal axis, top and
   * bottom exchanged. 'vertical' is value 1: mirrored about a vertical axis, left and right exchanged.
   * This is the reading of HEIF amendment 2 (field renamed from axis to mode) and what libheif,
   * libavif and Apple decoders do; the 2017 text's "vertical (axis = 0)" read the other way round.
   */
  mirror: 'none' | 'vertical' | 'horizontal';
  /** Primary item type: 'hvc1' (HEVC), 'av01' (AV1), 'grid', 'iden', ... */
  codec: string;
  /** For a grid: rows, columns, output size (ImageGrid) and the tile count (the grid's dimg references). */
  grid?: { rows: number; columns: number; outputWidth: number; outputHeight: number; tiles: number };
  /** True when the file has a moov box (image sequence track) among the top-level boxes in the buffer. */
  hasSequence: boolean;
  /** True when an alpha plane (an auxl item whose auxC names alpha) belongs to the primary item. */
  hasAlpha: boolean;
}

/** The grid payload is 8 bytes (16-bit fields) or 12 bytes (32-bit fields). */
const GRID_BYTES_MAX = 12;

// Brand tiers, most specific first. A codec brand (AVIF, HEVC still, HEVC sequence) names what
// the decoder must handle; msf1 and mif1 only name the structure. The rule: the highest tier
// that any brand reaches wins, and within a tier the major brand, then the compatible brands in
// file order. So mif1 + heic is image/heic, and msf1 + hevc is image/heic-sequence.
const CODEC_BRANDS: Record<string, string> = {
  avif: 'image/avif',
  avis: 'image/avif',
  heic: 'image/heic',
  heix: 'image/heic',
  heim: 'image/heic',
  heis: 'image/heic',
  hevc: 'image/heic-sequence',
  hevx: 'image/heic-sequence',
  hevm: 'image/heic-sequence',
  hevs: 'image/heic-sequence',
};
const STRUCTURE_BRANDS: Record<string, string> = { msf1: 'image/heif-sequence', mif1: 'image/heif' };

function brandsOf(b: Uint8Array): string[] | null {
  if (b.length < 16 || fourcc(b, 4) !== 'ftyp') return null;
  const size = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  if (size < 16) return null;
  const end = Math.min(size, b.length);
  const brands = [fourcc(b, 8)];
  // Offset 12 is minor_version; compatible brands follow to the end of the box.
  for (let at = 16; at + 4 <= end; at += 4) brands.push(fourcc(b, at));
  return brands;
}

export function heifBrandType(b: Uint8Array): string | null {
  const brands = brandsOf(b);
  if (!brands) return null;
  for (const tier of [CODEC_BRANDS, STRUCTURE_BRANDS]) {
    for (const brand of brands) if (Object.hasOwn(tier, brand)) return tier[brand]!;
  }
  return null;
}

function parseGrid(data: Uint8Array): { rows: number; columns: number; outputWidth: number; outputHeight: number } {
  const r = new Reader(data, 0, data.length, 'grid item data');
  const version = r.u8();
  if (version !== 0) throw new Error(`HEIF: ImageGrid version ${version} is not supported`);
  const wide = (r.u8() & 1) === 1;
  const rows = r.u8() + 1;
  const columns = r.u8() + 1;
  const outputWidth = wide ? r.u32() : r.u16();
  const outputHeight = wide ? r.u32() : r.u16();
  return { rows, columns, outputWidth, outputHeight };
}

/** Item id -> item type, from the infe boxes (versions 2 and 3; older ones carry no type). */
function parseIinf(b: Uint8Array, box: Box): Map<number, string> {
  const r = new Reader(b, box.body, box.end, 'iinf');
  const { version } = r.full();
  const count = version === 0 ? r.u16() : r.u32();
  if (count > MAX_ITEMS) throw new Error(`HEIF: iinf lists ${count} items, more than ${MAX_ITEMS}`);
  const types = new Map<number, string>();
  for (const infe of childBoxes(b, r.pos, box.end, 'iinf')) {
    if (infe.type !== 'infe') continue;
    const e = new Reader(b, infe.body, infe.end, 'infe');
    const v = e.full().version;
    if (v < 2) continue;
    const id = v === 2 ? e.u16() : e.u32();
    e.u16(); // item_protection_index
    types.set(id, e.fourcc());
  }
  return types;
}

/** 1-based property indices associated with one item, in ipma order. */
function associationsOf(b: Uint8Array, box: Box, item: number): number[] {
  const r = new Reader(b, box.body, box.end, 'ipma');
  const { version, flags } = r.full();
  const count = r.u32();
  if (count > MAX_ITEMS) throw new Error(`HEIF: ipma lists ${count} items, more than ${MAX_ITEMS}`);
  const found: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = version < 1 ? r.u16() : r.u32();
    const n = r.u8();
    for (let a = 0; a < n; a++) {
      // The top bit is "essential"; the rest is the index, 0 meaning no property.
      const index = flags & 1 ? r.u16() & 0x7fff : r.u8() & 0x7f;
      if (id === item && index !== 0) found.push(index);
    }
  }
  return found;
}

/** How many tiles (dimg references) the item has, from iref. */
function dimgCount(b: Uint8Array, box: Box | undefined, item: number): number {
  if (!box) return 0;
  const r = new Reader(b, box.body, box.end, 'iref');
  const { version } = r.full();
  let tiles = 0;
  for (const ref of childBoxes(b, r.pos, box.end, 'iref')) {
    const e = new Reader(b, ref.body, ref.end, `iref '${ref.type}'`);
    const from = version === 0 ? e.u16() : e.u32();
    const n = e.u16();
    if (ref.type === 'dimg' && from === item) tiles += n;
  }
  return tiles;
}

/** The items that point at `to` with an iref of type `kind` (auxl: auxiliary images of `to`). */
function referencing(b: Uint8Array, box: Box | undefined, kind: string, to: number): number[] {
  if (!box) return [];
  const r = new Reader(b, box.body, box.end, 'iref');
  const { version } = r.full();
  const out: number[] = [];
  for (const ref of childBoxes(b, r.pos, box.end, 'iref')) {
    if (ref.type !== kind) continue;
    const e = new Reader(b, ref.body, ref.end, `iref '${ref.type}'`);
    const from = version === 0 ? e.u16() : e.u32();
    const n = e.u16();
    for (let i = 0; i < n; i++) if ((version === 0 ? e.u16() : e.u32()) === to) out.push(from);
  }
  return out;
}

/** The aux_type URN of an auxC property (a FullBox holding a NUL-terminated string). */
function auxType(b: Uint8Array, prop: Box): string {
  const start = prop.body + 4;
  let end = start;
  while (end < prop.end && b[end] !== 0) end++;
  return String.fromCharCode(...b.subarray(start, Math.min(end, start + 256)));
}

const ALPHA_URNS = new Set(['urn:mpeg:hevc:2015:auxid:1', 'urn:mpeg:mpegB:cicp:systems:auxiliary:alpha']);

function only(boxes: Box[], type: string, parent: string): Box {
  const box = boxes.find((x) => x.type === type);
  if (!box) throw new Error(`HEIF: ${parent} has no ${type} box`);
  return box;
}

/** The top-level boxes, the meta box among them, and whether a moov box was seen. */
function findMeta(b: Uint8Array): { meta: Box; hasSequence: boolean } {
  const top = childBoxes(b, 0, b.length, 'file', true);
  const hasSequence = top.some((x) => x.type === 'moov');
  const meta = top.find((x) => x.type === 'meta');
  if (!meta) {
    const last = top[top.length - 1];
    if (last && last.end > b.length) {
      throw new Error(
        `HEIF: no meta box in the first ${b.length} bytes ('${last.type}' at ${last.start} runs past them)`,
      );
    }
    throw new Error(`HEIF: no meta box in the ${b.length} bytes given`);
  }
  if (meta.end > b.length) throw new Error(`HEIF: meta box (${meta.end - meta.start} bytes) is truncated`);
  return { meta, hasSequence };
}

export function readHeifHeader(b: Uint8Array): HeifHeader {
  const type = heifBrandType(b);
  if (!type) throw new Error('HEIF: not a HEIF file (no ftyp box with a HEIF or AVIF brand)');
  const { meta, hasSequence } = findMeta(b);
  const metaReader = new Reader(b, meta.body, meta.end, 'meta');
  metaReader.full();
  const inMeta = childBoxes(b, metaReader.pos, meta.end, 'meta');

  const hdlr = only(inMeta, 'hdlr', 'meta');
  const h = new Reader(b, hdlr.body, hdlr.end, 'hdlr');
  h.full();
  h.u32(); // pre_defined
  const handler = h.fourcc();
  if (handler !== 'pict') throw new Error(`HEIF: meta handler is '${handler}', not 'pict'`);

  const pitm = only(inMeta, 'pitm', 'meta');
  const p = new Reader(b, pitm.body, pitm.end, 'pitm');
  const primary = p.full().version === 0 ? p.u16() : p.u32();

  const codec = parseIinf(b, only(inMeta, 'iinf', 'meta')).get(primary);
  if (!codec) throw new Error(`HEIF: primary item ${primary} has no infe entry`);

  const iprp = only(inMeta, 'iprp', 'meta');
  const inIprp = childBoxes(b, iprp.body, iprp.end, 'iprp');
  const ipco = only(inIprp, 'ipco', 'iprp');
  const properties = childBoxes(b, ipco.body, ipco.end, 'ipco');
  let width = 0;
  let height = 0;
  let rotation: HeifHeader['rotation'] = 0;
  let mirror: HeifHeader['mirror'] = 'none';
  let seenIspe = false;
  let seenIrot = false;
  let seenImir = false;
  // An item may be associated with several ipma boxes; each is read in turn.
  for (const ipma of inIprp.filter((x) => x.type === 'ipma')) {
    for (const index of associationsOf(b, ipma, primary)) {
      const prop = properties[index - 1];
      if (!prop) throw new Error(`HEIF: ipma refers to property ${index}, but ipco has ${properties.length}`);
      const r = new Reader(b, prop.body, prop.end, prop.type);
      if (prop.type === 'ispe' && !seenIspe) {
        seenIspe = true;
        r.full();
        width = r.u32();
        height = r.u32();
      } else if (prop.type === 'irot' && !seenIrot) {
        seenIrot = true;
        rotation = ((r.u8() & 3) * 90) as HeifHeader['rotation'];
      } else if (prop.type === 'imir' && !seenImir) {
        seenImir = true;
        mirror = r.u8() & 1 ? 'vertical' : 'horizontal';
      }
    }
  }

  let grid: HeifHeader['grid'];
  if (codec === 'grid') {
    const loc = parseIloc(b, only(inMeta, 'iloc', 'meta')).get(primary);
    if (!loc) throw new Error(`HEIF: grid item ${primary} has no iloc entry`);
    const data = itemBytes(
      b,
      loc,
      inMeta.find((x) => x.type === 'idat'),
      GRID_BYTES_MAX,
      'grid item',
    );
    grid = {
      ...parseGrid(data),
      tiles: dimgCount(
        b,
        inMeta.find((x) => x.type === 'iref'),
        primary,
      ),
    };
    if (!seenIspe) {
      width = grid.outputWidth;
      height = grid.outputHeight;
    } else if (width !== grid.outputWidth || height !== grid.outputHeight) {
      throw new Error(
        `HEIF: grid ispe ${width}x${height} does not match its output size ${grid.outputWidth}x${grid.outputHeight}`,
      );
    }
  }

  // Alpha: an auxiliary image of the primary item whose auxC says it is alpha.
  const ipmas = inIprp.filter((x) => x.type === 'ipma');
  const hasAlpha = referencing(
    b,
    inMeta.find((x) => x.type === 'iref'),
    'auxl',
    primary,
  ).some((item) =>
    ipmas.some((ipma) =>
      associationsOf(b, ipma, item).some((index) => {
        const prop = properties[index - 1];
        return prop?.type === 'auxC' && ALPHA_URNS.has(auxType(b, prop));
      }),
    ),
  );

  const swap = rotation === 90 || rotation === 270;
  return {
    type,
    width,
    height,
    displayWidth: swap ? height : width,
    displayHeight: swap ? width : height,
    rotation,
    mirror,
    codec,
    ...(grid ? { grid } : {}),
    hasSequence,
    hasAlpha,
  };
}
