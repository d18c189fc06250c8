// ISO-BMFF (ISO/IEC 14496-12) box reading for the HEIF header reader: bounds-checked reads,
// box walks that stop on anything that does not fit, and item locations (iloc). Every length
// is checked against the buffer; every loop is bounded by the buffer or by MAX_ITEMS.

/** More items than any real image has; beyond this the file is refused rather than walked. */
export const MAX_ITEMS = 100_000;

export const fourcc = (b: Uint8Array, at: number) => String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);

export interface Box {
  type: string;
  /** First byte of the box header. */
  start: number;
  /** First byte after the header (after version/flags is the caller's business). */
  body: number;
  /** One past the last byte. */
  end: number;
}

/** Bounds-checked big-endian reads over one region of the buffer. */
export class Reader {
  constructor(
    private readonly b: Uint8Array,
    public pos: number,
    private readonly end: number,
    private readonly what: string,
  ) {}

  private need(n: number): number {
    if (this.pos + n > this.end) throw new Error(`HEIF: truncated ${this.what} box`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.b[this.need(1)]!;
  }

  u16(): number {
    const at = this.need(2);
    return (this.b[at]! << 8) | this.b[at + 1]!;
  }

  u32(): number {
    const at = this.need(4);
    return ((this.b[at]! << 24) | (this.b[at + 1]! << 16) | (this.b[at + 2]! << 8) | this.b[at + 3]!) >>> 0;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi >= 0x200000) throw new Error(`HEIF: 64-bit value in ${this.what} box is too large`);
    return hi * 0x100000000 + lo;
  }

  /** An unsigned integer of `size` bytes (0, 4 or 8, as iloc sizes are). */
  uint(size: number): number {
    if (size === 0) return 0;
    if (size === 4) return this.u32();
    if (size === 8) return this.u64();
    throw new Error(`HEIF: field size ${size} in ${this.what} box is not 0, 4 or 8`);
  }

  fourcc(): string {
    return fourcc(this.b, this.need(4));
  }

  /** Version and flags of a FullBox. */
  full(): { version: number; flags: number } {
    const v = this.u32();
    return { version: v >>> 24, flags: v & 0xffffff };
  }
}

/**
 * The boxes laid end to end in [start, end). A box running past `end` throws, except at the top
 * level (`partial`), where the buffer may be a prefix: there the box is returned with `end` past
 * the buffer and the walk stops, and the caller decides whether that matters.
 */
export function childBoxes(b: Uint8Array, start: number, end: number, parent: string, partial = false): Box[] {
  const out: Box[] = [];
  let pos = start;
  while (pos < end) {
    if (out.length >= MAX_ITEMS) throw new Error(`HEIF: more than ${MAX_ITEMS} boxes in ${parent}`);
    // A prefix may stop inside a top-level box header; what came before it is still usable.
    if (partial && end - pos < 8) break;
    const r = new Reader(b, pos, end, parent);
    let size = r.u32();
    if (partial && size === 1 && end - pos < 16) break;
    const type = r.fourcc();
    if (size === 1) size = r.u64();
    else if (size === 0) size = end - pos;
    const body = r.pos;
    if (size < body - pos) throw new Error(`HEIF: box '${type}' in ${parent} has impossible size ${size}`);
    const boxEnd = pos + size;
    if (boxEnd > end) {
      if (!partial) throw new Error(`HEIF: box '${type}' runs past the end of ${parent}`);
      out.push({ type, start: pos, body, end: boxEnd });
      break;
    }
    out.push({ type, start: pos, body, end: boxEnd });
    pos = boxEnd;
  }
  return out;
}

export interface Extent {
  offset: number;
  length: number;
}
export interface Location {
  method: number;
  dataRef: number;
  base: number;
  extents: Extent[];
}

export function parseIloc(b: Uint8Array, box: Box): Map<number, Location> {
  const r = new Reader(b, box.body, box.end, 'iloc');
  const { version } = r.full();
  if (version > 2) throw new Error(`HEIF: iloc version ${version} is not supported`);
  const sizes = r.u16();
  const offsetSize = sizes >> 12;
  const lengthSize = (sizes >> 8) & 15;
  const baseSize = (sizes >> 4) & 15;
  const indexSize = version >= 1 ? sizes & 15 : 0;
  const count = version < 2 ? r.u16() : r.u32();
  if (count > MAX_ITEMS) throw new Error(`HEIF: iloc lists ${count} items, more than ${MAX_ITEMS}`);
  const out = new Map<number, Location>();
  // With all field sizes 0 an extent takes no bytes, so the buffer alone would not bound the walk.
  let totalExtents = 0;
  for (let i = 0; i < count; i++) {
    const id = version < 2 ? r.u16() : r.u32();
    const method = version >= 1 ? r.u16() & 15 : 0;
    const dataRef = r.u16();
    const base = r.uint(baseSize);
    const extentCount = r.u16();
    totalExtents += extentCount;
    if (totalExtents > MAX_ITEMS) throw new Error(`HEIF: iloc has more than ${MAX_ITEMS} extents`);
    const extents: Extent[] = [];
    for (let e = 0; e < extentCount; e++) {
      r.uint(indexSize);
      extents.push({ offset: r.uint(offsetSize), length: r.uint(lengthSize) });
    }
    out.set(id, { method, dataRef, base, extents });
  }
  return out;
}

/** The first `max` bytes of an item's data, gathered across its extents. */
export function itemBytes(b: Uint8Array, loc: Location, idat: Box | undefined, max: number, what: string): Uint8Array {
  if (loc.dataRef !== 0) throw new Error(`HEIF: ${what} data is in another file (data_reference_index ${loc.dataRef})`);
  let regionStart: number;
  let regionEnd: number;
  if (loc.method === 0) {
    regionStart = 0;
    regionEnd = b.length;
  } else if (loc.method === 1) {
    if (!idat) throw new Error(`HEIF: ${what} data is in idat but meta has no idat box`);
    regionStart = idat.body;
    regionEnd = idat.end;
  } else {
    throw new Error(`HEIF: ${what} data uses construction_method ${loc.method}, which is not supported`);
  }
  const parts: Uint8Array[] = [];
  let have = 0;
  for (const e of loc.extents) {
    if (have >= max) break;
    const from = regionStart + loc.base + e.offset;
    // Length 0 means "to the end of the region"; only the bytes we need are taken anyway.
    const want = Math.min(max - have, e.length === 0 ? max : e.length);
    if (from + want > regionEnd) {
      throw new Error(`HEIF: ${what} data at offset ${from} lies beyond the ${regionEnd} bytes available`);
    }
    parts.push(b.subarray(from, from + want));
    have += want;
  }
  const out = new Uint8Array(have);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
