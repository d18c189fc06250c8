// Adds irot/imir properties to a real HEIC's primary item, because heif-enc 1.15 has no option to
// write them. The new property boxes go at the end of ipco, their associations at the end of the
// primary item's ipma entry (transformative properties come after descriptive ones there); every
// enclosing box size grows, and iloc file offsets (construction_method 0) past an insertion point
// move by the bytes inserted before them, so the coded data is still found.

interface Box {
  type: string;
  start: number;
  /** Where the size field is: 32-bit at start, or 64-bit largesize at start + 8. */
  large: boolean;
  body: number;
  end: number;
}

function boxesIn(b: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  for (let pos = start; pos + 8 <= end;) {
    let size = b.readUInt32BE(pos);
    const type = b.toString('latin1', pos + 4, pos + 8);
    const large = size === 1;
    if (large) size = Number(b.readBigUInt64BE(pos + 8));
    else if (size === 0) size = end - pos;
    if (size < 8 || pos + size > end) throw new Error(`heif-edit: box '${type}' at ${pos} has bad size ${size}`);
    out.push({ type, start: pos, large, body: pos + (large ? 16 : 8), end: pos + size });
    pos += size;
  }
  return out;
}

function child(boxes: Box[], type: string): Box {
  const box = boxes.find((x) => x.type === type);
  if (!box) throw new Error(`heif-edit: no ${type} box`);
  return box;
}

function growBox(b: Buffer, box: Box, by: number): void {
  if (box.large) b.writeBigUInt64BE(b.readBigUInt64BE(box.start + 8) + BigInt(by), box.start + 8);
  else b.writeUInt32BE(b.readUInt32BE(box.start) + by, box.start);
}

const readUint = (b: Buffer, at: number, size: number): number =>
  size === 0 ? 0 : size === 4 ? b.readUInt32BE(at) : Number(b.readBigUInt64BE(at));

function writeUint(b: Buffer, at: number, size: number, value: number): void {
  if (size === 4) b.writeUInt32BE(value, at);
  else if (size === 8) b.writeBigUInt64BE(BigInt(value), at);
  else throw new Error(`heif-edit: cannot move an offset stored in ${size} bytes`);
}

/** Moves every construction_method 0 offset of iloc (in place) by `shift(absolute offset)`. */
function shiftIloc(b: Buffer, iloc: Box, shift: (offset: number) => number): void {
  const version = b[iloc.body]!;
  let pos = iloc.body + 4;
  const sizes = b.readUInt16BE(pos);
  pos += 2;
  const offsetSize = sizes >> 12;
  const lengthSize = (sizes >> 8) & 15;
  const baseSize = (sizes >> 4) & 15;
  const indexSize = version >= 1 ? sizes & 15 : 0;
  const count = version < 2 ? b.readUInt16BE(pos) : b.readUInt32BE(pos);
  pos += version < 2 ? 2 : 4;
  for (let i = 0; i < count; i++) {
    pos += version < 2 ? 2 : 4; // item_ID
    const method = version >= 1 ? b.readUInt16BE(pos) & 15 : 0;
    if (version >= 1) pos += 2;
    const dataRef = b.readUInt16BE(pos);
    pos += 2;
    const baseAt = pos;
    const base = readUint(b, pos, baseSize);
    pos += baseSize;
    const extentCount = b.readUInt16BE(pos);
    pos += 2;
    const moved = method === 0 && dataRef === 0;
    for (let e = 0; e < extentCount; e++) {
      pos += indexSize;
      // Without a base_offset field each extent offset is absolute and moves on its own; with one,
      // the base moves (once, below) and the extent offsets relative to it stay.
      if (moved && baseSize === 0)
        writeUint(b, pos, offsetSize, readUint(b, pos, offsetSize) + shift(readUint(b, pos, offsetSize)));
      pos += offsetSize + lengthSize;
    }
    if (moved && baseSize > 0 && extentCount > 0) {
      const first = readUint(b, baseAt + baseSize + 2 + indexSize, offsetSize);
      writeUint(b, baseAt, baseSize, base + shift(base + first));
    }
  }
}

/** A plain Box holding one byte (irot angle or imir axis). */
const oneByteBox = (type: string, value: number) =>
  Buffer.concat([Buffer.from([0, 0, 0, 9]), Buffer.from(type, 'latin1'), Buffer.from([value])]);

export function withHeifTransforms(heic: Buffer, opts: { rotation?: 90 | 180 | 270; mirror?: 0 | 1 }): Buffer {
  const props: Buffer[] = [];
  if (opts.rotation !== undefined) props.push(oneByteBox('irot', opts.rotation / 90));
  if (opts.mirror !== undefined) props.push(oneByteBox('imir', opts.mirror));
  if (props.length === 0) return Buffer.from(heic);

  const b = Buffer.from(heic);
  const meta = child(boxesIn(b, 0, b.length), 'meta');
  const inMeta = boxesIn(b, meta.body + 4, meta.end);
  const pitm = child(inMeta, 'pitm');
  const primary = b[pitm.body] === 0 ? b.readUInt16BE(pitm.body + 4) : b.readUInt32BE(pitm.body + 4);
  const iprp = child(inMeta, 'iprp');
  const inIprp = boxesIn(b, iprp.body, iprp.end);
  const ipco = child(inIprp, 'ipco');
  const ipma = child(inIprp, 'ipma');
  const firstNewIndex = boxesIn(b, ipco.body, ipco.end).length + 1;

  // Find the primary item's ipma entry: its association count byte and its end.
  const version = b[ipma.body]!;
  const wide = (b.readUInt32BE(ipma.body) & 1) === 1;
  const entries = b.readUInt32BE(ipma.body + 4);
  let pos = ipma.body + 8;
  let countAt = -1;
  let entryEnd = -1;
  for (let i = 0; i < entries && countAt < 0; i++) {
    const id = version < 1 ? b.readUInt16BE(pos) : b.readUInt32BE(pos);
    pos += version < 1 ? 2 : 4;
    const n = b[pos]!;
    const at = pos;
    pos += 1 + n * (wide ? 2 : 1);
    if (id === primary) [countAt, entryEnd] = [at, pos];
  }
  if (countAt < 0) throw new Error(`heif-edit: primary item ${primary} has no ipma entry`);
  if (b[countAt]! + props.length > 255) throw new Error('heif-edit: ipma entry has no room for more associations');
  const lastIndex = firstNewIndex + props.length - 1;
  if (lastIndex > (wide ? 0x7fff : 0x7f)) throw new Error(`heif-edit: property index ${lastIndex} does not fit ipma`);
  // irot and imir are transformative, which the spec requires to be marked essential.
  const associations = Buffer.concat(
    props.map((_, i) => {
      const index = firstNewIndex + i;
      return wide ? Buffer.from([0x80 | (index >> 8), index & 255]) : Buffer.from([0x80 | index]);
    }),
  );

  const insertions = [
    { at: ipco.end, bytes: Buffer.concat(props) },
    { at: entryEnd, bytes: associations },
  ].sort((x, y) => x.at - y.at);
  const shift = (offset: number) => insertions.reduce((sum, x) => sum + (offset >= x.at ? x.bytes.length : 0), 0);

  // Edit in place at the original positions first: none of them is moved by an insertion.
  b[countAt] = b[countAt]! + props.length;
  const iloc = inMeta.find((x) => x.type === 'iloc');
  if (iloc) shiftIloc(b, iloc, shift);
  growBox(b, ipco, insertions.find((x) => x.at === ipco.end)!.bytes.length);
  growBox(b, ipma, associations.length);
  const added = insertions.reduce((sum, x) => sum + x.bytes.length, 0);
  growBox(b, iprp, added);
  growBox(b, meta, added);

  const parts: Buffer[] = [];
  let from = 0;
  for (const x of insertions) {
    parts.push(b.subarray(from, x.at), x.bytes);
    from = x.at;
  }
  parts.push(b.subarray(from));
  return Buffer.concat(parts);
}
