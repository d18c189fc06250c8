// The 512-byte ustar header (POSIX.1-1988) and the pax extended records (POSIX.1-2001) that
// carry what it cannot: names over 100 bytes and sizes of 8 GiB and more. Written here by
// hand because Node has no tar module and the format is small; both directions live in one
// file so the field offsets are stated once.

export const BLOCK = 512;

/** Field offsets and lengths of the ustar header. */
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;

/** The largest size an 11-digit octal field holds (8 GiB - 1); larger needs a pax record. */
export const MAX_OCTAL_SIZE = 0o77777777777;

export type TarType =
  | 'file'
  | 'dir'
  | 'symlink'
  | 'hardlink'
  | 'char'
  | 'block'
  | 'fifo'
  | 'pax'
  | 'pax-global'
  | 'gnu-longname'
  | 'gnu-longlink'
  | 'other';

export interface RawHeader {
  name: string;
  /** Bytes after the first NUL of the name field were not all NUL (a smuggled suffix). */
  nameHasNul: boolean;
  size: number;
  mtime: number;
  type: TarType;
  typeflag: string;
  linkname: string;
  prefix: string;
  magic: 'ustar' | 'gnu' | 'v7';
}

function writeOctal(buf: Buffer, [off, len]: readonly [number, number], value: number): void {
  // len-1 octal digits, then NUL: the form every reader accepts.
  buf.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
}

function writeString(buf: Buffer, [off, len]: readonly [number, number], value: string): void {
  buf.write(value, off, len, 'utf8');
}

function checksum(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    // The checksum field itself counts as eight spaces.
    const b = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

export interface HeaderFields {
  name: string;
  size: number;
  mtimeMs: number;
  /** '0' regular file, 'x' pax extended header. */
  typeflag: '0' | 'x';
  prefix?: string;
}

/** One header block; name and prefix must already fit their fields (the writer decides). */
export function encodeHeader(h: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, F.name, h.name);
  writeOctal(b, F.mode, 0o644);
  writeOctal(b, F.uid, 0);
  writeOctal(b, F.gid, 0);
  writeOctal(b, F.size, Math.min(h.size, MAX_OCTAL_SIZE));
  writeOctal(b, F.mtime, Math.max(0, Math.floor(h.mtimeMs / 1000)));
  b.write(h.typeflag, F.typeflag[0], 1, 'ascii');
  b.write('ustar\u000000', F.magic[0], 8, 'ascii');
  writeOctal(b, F.devmajor, 0);
  writeOctal(b, F.devminor, 0);
  if (h.prefix) writeString(b, F.prefix, h.prefix);
  const sum = checksum(b).unsigned;
  // Six octal digits, NUL, space: the historical layout.
  b.write(sum.toString(8).padStart(6, '0'), F.chksum[0], 6, 'ascii');
  b[F.chksum[0] + 6] = 0;
  b[F.chksum[0] + 7] = 0x20;
  return b;
}

/** The body of a pax 'x' entry: "LEN key=value\n" records, LEN counting the whole record. */
export function encodePaxRecords(records: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    const bodyLen = Buffer.byteLength(body);
    let len = bodyLen + String(bodyLen).length;
    if (String(len).length !== len - bodyLen) len += 1; // counting its own digits added one
    parts.push(Buffer.from(`${len}${body}`, 'utf8'));
  }
  return Buffer.concat(parts);
}

/** Parses pax records; throws on a malformed record (a length that does not add up). */
export function decodePaxRecords(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // NUL padding after the last record
    const sp = body.indexOf(0x20, pos);
    if (sp < 0 || sp - pos > 20) throw new Error('malformed pax record (no length)');
    const lenText = body.toString('ascii', pos, sp);
    if (!/^[0-9]+$/.test(lenText)) throw new Error('malformed pax record (bad length)');
    const len = Number(lenText);
    const end = pos + len;
    if (len <= sp - pos + 1 || end > body.length || body[end - 1] !== 0x0a)
      throw new Error('malformed pax record (length does not match)');
    const rec = body.toString('utf8', sp + 1, end - 1);
    const eq = rec.indexOf('=');
    if (eq <= 0) throw new Error('malformed pax record (no key)');
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos = end;
  }
  return out;
}

function readString(b: Buffer, [off, len]: readonly [number, number]): { text: string; nul: boolean } {
  const field = b.subarray(off, off + len);
  const z = field.indexOf(0);
  if (z < 0) return { text: field.toString('utf8'), nul: false };
  // Anything after the terminating NUL must be NUL too, or the field hides a second name.
  const rest = field.subarray(z);
  return { text: field.toString('utf8', 0, z), nul: rest.some((c) => c !== 0) };
}

/** Octal (space/NUL padded) or GNU base-256 (high bit set: how sizes of 8 GiB+ are written). */
function readNumber(b: Buffer, [off, len]: readonly [number, number], what: string): number {
  const field = b.subarray(off, off + len);
  if (field[0]! & 0x80) {
    if (field[0] === 0xff) throw new Error(`negative ${what}`);
    let v = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + field[i]!;
      if (v > Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER; // refused by any cap
    }
    return v;
  }
  const text = field
    .toString('ascii')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`bad ${what} field`);
  return parseInt(text, 8);
}

const TYPES: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file: a regular file to every reader
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
  x: 'pax',
  g: 'pax-global',
  L: 'gnu-longname',
  K: 'gnu-longlink',
};

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Decodes one header block; throws on a bad checksum or an unreadable number field. */
export function decodeHeader(b: Buffer): RawHeader {
  const stored = readNumber(b, F.chksum, 'checksum');
  const { unsigned, signed } = checksum(b);
  // Old writers summed signed bytes; every reader accepts either.
  if (stored !== unsigned && stored !== signed)
    throw new Error(`bad header checksum (stored ${stored}, computed ${unsigned})`);
  const magicText = b.toString('latin1', F.magic[0], F.magic[0] + 8);
  const magic = magicText.startsWith('ustar\0') ? 'ustar' : magicText === 'ustar  \0' ? 'gnu' : 'v7';
  const name = readString(b, F.name);
  const typeflag = b.toString('latin1', F.typeflag[0], F.typeflag[0] + 1);
  return {
    name: name.text,
    nameHasNul: name.nul,
    size: readNumber(b, F.size, 'size'),
    mtime: readNumber(b, F.mtime, 'mtime'),
    type: TYPES[typeflag] ?? 'other',
    typeflag,
    linkname: readString(b, F.linkname).text,
    prefix: magic === 'ustar' ? readString(b, F.prefix).text : '',
    magic,
  };
}

/** Bytes of NUL padding after a body of `size` bytes, up to the next block. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}
