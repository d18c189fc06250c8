// APNG (animated PNG) decoding for the thumbnailer. libvips reads only a PNG's default image
// and ignores the animation, so here the chunk stream is split into one standalone PNG per
// frame (decoded by the caller's callback, so this file needs no sharp) and the frames are
// composited following https://wiki.mozilla.org/APNG_Specification. Input is untrusted: every
// length, rectangle and sequence number is checked before use, and every failure caused by the
// bytes is an Error whose message starts 'corrupt APNG' (or 'too many frames'), never a
// RangeError from a read. (A RangeError does mean a caller bug: an `only` out of range.)

export interface ApngFrame {
  x: number;
  y: number;
  width: number;
  height: number;
  delayMs: number;
  disposeOp: 0 | 1 | 2;
  blendOp: 0 | 1;
  /** A standalone PNG of just this frame: what the caller's decoder (sharp) reads. */
  png: Buffer;
}
export interface ApngInfo {
  width: number;
  height: number;
  numFrames: number;
  numPlays: number;
  /** true when the default image (IDAT) is the first frame */
  defaultIsFrame: boolean;
}

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
const MAX_U31 = 0x7fffffff; // the PNG limit for lengths, sizes and counts
// Chunks before IDAT that change how the image data reads; each frame's PNG needs them.
const COPIED = new Set(['PLTE', 'tRNS', 'gAMA', 'cHRM', 'sRGB', 'iCCP', 'sBIT']);
const DISPOSE_BACKGROUND = 1,
  DISPOSE_PREVIOUS = 2; // 0 is NONE: leave the canvas as drawn

const CRC_TABLE = new Int32Array(256).map((_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n;
});
function crc32(buf: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const corrupt = (why: string) => new Error(`corrupt APNG: ${why}`);
const hasSignature = (buf: Uint8Array) => buf.length >= 8 && SIGNATURE.every((b, i) => buf[i] === b);
const dataView = (buf: Uint8Array) => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

/** `start`: offset of the chunk's data; its type is the 4 bytes before, its CRC right after the data. */
interface Chunk {
  type: string;
  start: number;
  length: number;
}

/** Walks the chunks after the signature. Each step advances at least 12 bytes, so it ends. */
function* chunks(buf: Uint8Array, dv: DataView): Generator<Chunk> {
  for (let off = 8; off < buf.length;) {
    if (off + 12 > buf.length) throw corrupt(`truncated chunk header at ${off}`);
    const length = dv.getUint32(off);
    if (length > MAX_U31 || off + 12 + length > buf.length) throw corrupt(`chunk at ${off} runs past the end`);
    const type = String.fromCharCode(buf[off + 4], buf[off + 5], buf[off + 6], buf[off + 7]);
    if (!/^[A-Za-z]{4}$/.test(type)) throw corrupt(`bad chunk type at ${off}`);
    yield { type, start: off + 8, length };
    off += 12 + length;
  }
}

/** CRC check for the chunks we interpret (IHDR, acTL, fcTL): a damaged one would be misread. */
function checked(buf: Uint8Array, dv: DataView, c: Chunk, length: number): Chunk {
  if (c.length !== length) throw corrupt(`${c.type} length ${c.length}`);
  if (crc32(buf, c.start - 4, c.start + c.length) !== dv.getUint32(c.start + c.length))
    throw corrupt(`${c.type} CRC mismatch`);
  return c;
}

/** Cheap check from the bytes: a PNG with an acTL before the first IDAT announcing more than one frame. */
export function isAnimatedPng(buf: Uint8Array): boolean {
  try {
    return (readApngInfo(buf)?.numFrames ?? 0) > 1;
  } catch {
    return false;
  }
}

/** Reads IHDR and acTL, stopping at the first IDAT (an acTL after it does not count, per the spec). */
export function readApngInfo(buf: Uint8Array): ApngInfo | null {
  if (!hasSignature(buf)) return null;
  const dv = dataView(buf);
  let width = 0,
    height = 0,
    actl: Chunk | null = null,
    defaultIsFrame = false;
  for (const c of chunks(buf, dv)) {
    if (width === 0 && c.type !== 'IHDR') throw corrupt('IHDR is not the first chunk');
    if (c.type === 'IHDR') {
      if (width !== 0) throw corrupt('second IHDR');
      checked(buf, dv, c, 13);
      width = dv.getUint32(c.start);
      height = dv.getUint32(c.start + 4);
      if (width === 0 || height === 0 || width > MAX_U31 || height > MAX_U31)
        throw corrupt(`bad size ${width}x${height}`);
    } else if (c.type === 'acTL') {
      actl = checked(buf, dv, c, 8);
    } else if (c.type === 'fcTL') {
      defaultIsFrame = true;
    } else if (c.type === 'IDAT') {
      if (!actl) return null;
      const numFrames = dv.getUint32(actl.start),
        numPlays = dv.getUint32(actl.start + 4);
      if (numFrames === 0 || numFrames > MAX_U31 || numPlays > MAX_U31)
        throw corrupt(`bad acTL ${numFrames}/${numPlays}`);
      return { width, height, numFrames, numPlays, defaultIsFrame };
    }
  }
  throw corrupt('no IDAT');
}

type Control = Omit<ApngFrame, 'png'>;

function readFcTL(buf: Uint8Array, dv: DataView, c: Chunk, info: ApngInfo, seq: number): Control {
  const o = checked(buf, dv, c, 26).start;
  if (dv.getUint32(o) !== seq) throw corrupt(`fcTL sequence ${dv.getUint32(o)}, expected ${seq}`);
  const [width, height, x, y] = [4, 8, 12, 16].map((p) => dv.getUint32(o + p));
  const num = dv.getUint16(o + 20),
    den = dv.getUint16(o + 22) || 100; // den 0 means 1/100 s
  const disposeOp = buf[o + 24],
    blendOp = buf[o + 25];
  // Plain numbers: x + width cannot overflow the way it would in 32-bit C arithmetic.
  if (width === 0 || height === 0 || x + width > info.width || y + height > info.height) {
    throw corrupt(`frame ${width}x${height}+${x}+${y} empty or outside the ${info.width}x${info.height} canvas`);
  }
  if (disposeOp > 2 || blendOp > 1) throw corrupt(`bad dispose_op ${disposeOp} or blend_op ${blendOp}`);
  return {
    x,
    y,
    width,
    height,
    delayMs: Math.round((num * 1000) / den),
    disposeOp: disposeOp as 0 | 1 | 2,
    blendOp: blendOp as 0 | 1,
  };
}

interface Piece {
  type: string;
  data: Uint8Array;
  crc?: number;
}

/** One PNG: signature, IHDR with the frame's size, the copied chunks, one IDAT per data piece, IEND. One allocation. */
function framePng(ihdr: Uint8Array, copied: Piece[], f: Control, data: Uint8Array[]): Buffer {
  const all: Piece[] = [
    { type: 'IHDR', data: ihdr },
    ...copied,
    ...data.map((d) => ({ type: 'IDAT', data: d })),
    { type: 'IEND', data: new Uint8Array(0) },
  ];
  const out = Buffer.allocUnsafe(8 + all.reduce((n, c) => n + 12 + c.data.length, 0));
  SIGNATURE.copy(out, 0);
  let off = 8;
  for (const c of all) {
    out.writeUInt32BE(c.data.length, off);
    out.write(c.type, off + 4, 'latin1');
    out.set(c.data, off + 8);
    if (c.type === 'IHDR') {
      out.writeUInt32BE(f.width, off + 8);
      out.writeUInt32BE(f.height, off + 12);
    }
    off += 8 + c.data.length;
    out.writeUInt32BE(c.crc ?? crc32(out, off - c.data.length - 4, off), off);
    off += 4;
  }
  return out;
}

/**
 * Splits an APNG into frames, validating the whole chunk stream (through IEND). Each frame's
 * `png` is a getter that builds the PNG on access from views into `buf` (keep it unchanged):
 * splitting copies nothing, and with copied chunks (an iCCP) repeated in every frame, building
 * them all up front could take frames times their size. Read `png` once per decode.
 */
export function splitApngFrames(buf: Uint8Array, maxFrames: number): { info: ApngInfo; frames: ApngFrame[] } {
  if (!hasSignature(buf)) throw corrupt('no PNG signature');
  const info = readApngInfo(buf);
  if (!info) throw corrupt('no acTL before the first IDAT');
  // Checked before any frame is built: the announced count bounds the work below.
  if (info.numFrames > maxFrames) throw new Error(`too many frames: ${info.numFrames} > ${maxFrames}`);
  const dv = dataView(buf);
  const copied: Piece[] = [];
  const frames: ApngFrame[] = [];
  let ihdr: Uint8Array = new Uint8Array(0),
    seq = 0,
    ended = false;
  let phase: 'before' | 'idat' | 'after' = 'before'; // relative to the (single, contiguous) IDAT run
  let pending: { control: Control; fromIdat: boolean; data: Uint8Array[] } | null = null;
  const finish = () => {
    if (!pending) return;
    if (pending.data.length === 0) throw corrupt(`frame ${frames.length} has no image data`);
    const { control, data } = pending;
    frames.push(
      Object.defineProperty({ ...control }, 'png', {
        enumerable: true,
        get: () => framePng(ihdr, copied, control, data),
      }) as ApngFrame,
    );
    pending = null;
  };
  for (const c of chunks(buf, dv)) {
    const data = buf.subarray(c.start, c.start + c.length);
    if (phase === 'idat' && c.type !== 'IDAT') phase = 'after';
    if (c.type === 'IHDR')
      ihdr = data; // validated by readApngInfo
    else if (c.type === 'IEND') {
      ended = true;
      break;
    } else if (c.type === 'IDAT') {
      if (phase === 'after') throw corrupt('IDAT chunks are not contiguous');
      phase = 'idat';
      if (pending) pending.data.push(data); // the default image is frame 0
    } else if (c.type === 'fcTL') {
      finish();
      if (frames.length >= info.numFrames) throw corrupt(`more fcTL chunks than num_frames ${info.numFrames}`);
      const control = readFcTL(buf, dv, c, info, seq++);
      if (
        phase === 'before' &&
        (control.x !== 0 || control.y !== 0 || control.width !== info.width || control.height !== info.height)
      ) {
        throw corrupt('the default image frame must cover the canvas');
      }
      pending = { control, fromIdat: phase === 'before', data: [] };
    } else if (c.type === 'fdAT') {
      if (!pending || pending.fromIdat) throw corrupt('fdAT without its fcTL');
      if (c.length < 4 || dv.getUint32(c.start) !== seq) throw corrupt(`fdAT sequence, expected ${seq}`);
      seq++;
      pending.data.push(data.subarray(4)); // strip the sequence number: the rest is IDAT data
    } else if (COPIED.has(c.type) && phase === 'before') {
      copied.push({ type: c.type, data, crc: crc32(buf, c.start - 4, c.start + c.length) }); // once, not per frame
    }
  }
  if (!ended) throw corrupt('no IEND (truncated)');
  finish();
  if (frames.length !== info.numFrames) throw corrupt(`${frames.length} frames, acTL says ${info.numFrames}`);
  return { info, frames };
}

/** Copies a frame rectangle between a canvas (row stride `cw` pixels) and a packed region buffer. */
function region(canvas: Buffer, cw: number, f: Control, buf: Buffer, save: boolean): void {
  const rowBytes = f.width * 4;
  for (let r = 0; r < f.height; r++) {
    const c = ((f.y + r) * cw + f.x) * 4;
    if (save) canvas.copy(buf, r * rowBytes, c, c + rowBytes);
    else buf.copy(canvas, c, r * rowBytes, (r + 1) * rowBytes);
  }
}

/** Draws decoded RGBA `src` into the frame rectangle: SOURCE overwrites, OVER composites straight alpha. */
function draw(canvas: Buffer, cw: number, f: Control, src: Buffer): void {
  const rowBytes = f.width * 4;
  for (let r = 0; r < f.height; r++) {
    const d0 = ((f.y + r) * cw + f.x) * 4,
      s0 = r * rowBytes;
    if (f.blendOp === 0) {
      src.copy(canvas, d0, s0, s0 + rowBytes);
      continue;
    }
    for (let i = 0; i < rowBytes; i += 4) {
      const s = s0 + i,
        d = d0 + i,
        sa = src[s + 3];
      if (sa === 0) continue; // fully transparent: the canvas shows through unchanged
      const da = canvas[d + 3];
      if (sa === 255 || da === 0) {
        // Plain stores: a Buffer.copy call per pixel costs several times more.
        canvas[d] = src[s];
        canvas[d + 1] = src[s + 1];
        canvas[d + 2] = src[s + 2];
        canvas[d + 3] = sa;
        continue;
      }
      // Weights scaled by 255²: out_a = sa + da(1 - sa); out_c = (c_s·sa + c_d·da(1 - sa)) / out_a.
      // (x + 0.5) | 0 rounds these non-negative values; one division per pixel, not per channel.
      const inv = 1 / (sa * 255 + da * (255 - sa)),
        sw = sa * 255 * inv,
        dw = da * (255 - sa) * inv;
      canvas[d] = (src[s] * sw + canvas[d] * dw + 0.5) | 0;
      canvas[d + 1] = (src[s + 1] * sw + canvas[d + 1] * dw + 0.5) | 0;
      canvas[d + 2] = (src[s + 2] * sw + canvas[d + 2] * dw + 0.5) | 0;
      canvas[d + 3] = (sa + (da * (255 - sa)) / 255 + 0.5) | 0;
    }
  }
}

/**
 * Composites the frames into canvas snapshots stacked top to bottom (sharp's raw input with
 * pageHeight). No separate canvas: each output page starts as a copy of the previous one with
 * the previous frame's dispose_op applied, so memory is the output plus one saved region (and
 * the decoded frame the callback returns). With `only`, the one output page is the canvas.
 */
export async function composeApng(
  split: { info: ApngInfo; frames: ApngFrame[] },
  decode: (png: Buffer) => Promise<{ data: Buffer; width: number; height: number }>,
  options: { only?: number } = {},
): Promise<{ data: Buffer; width: number; height: number; pages: number; delays: number[] }> {
  const { info, frames } = split,
    { width, height } = info,
    only = options.only;
  if (frames.length === 0) throw corrupt('no frames');
  if (only !== undefined && !(Number.isInteger(only) && only >= 0 && only < frames.length)) {
    throw new RangeError(`frame ${only} out of range 0..${frames.length - 1}`);
  }
  const pages = only === undefined ? frames.length : 1,
    last = only ?? frames.length - 1,
    pageBytes = width * height * 4;
  const data = Buffer.alloc(pageBytes * pages); // zeroed: the canvas starts transparent black
  // PREVIOUS needs the region under a frame saved; one buffer, sized once for the largest such
  // rectangle (the last frame's dispose_op is never applied, nor frame 0's PREVIOUS: see below).
  const savedBytes = frames
    .slice(1, last)
    .reduce((n, f) => (f.disposeOp === DISPOSE_PREVIOUS ? Math.max(n, f.width * f.height * 4) : n), 0);
  const saved = Buffer.allocUnsafe(savedBytes);
  for (let i = 0; i <= last; i++) {
    const page = pages === 1 ? 0 : i;
    const canvas = data.subarray(page * pageBytes, (page + 1) * pageBytes);
    if (i > 0) {
      const prev = frames[i - 1];
      if (page > 0) data.copy(canvas, 0, (page - 1) * pageBytes, page * pageBytes);
      // The spec treats PREVIOUS on frame 0 as BACKGROUND: there is nothing before it.
      const dispose = i - 1 === 0 && prev.disposeOp === DISPOSE_PREVIOUS ? DISPOSE_BACKGROUND : prev.disposeOp;
      if (dispose === DISPOSE_PREVIOUS) region(canvas, width, prev, saved, false);
      else if (dispose === DISPOSE_BACKGROUND) {
        for (let r = 0, c = (prev.y * width + prev.x) * 4; r < prev.height; r++, c += width * 4)
          canvas.fill(0, c, c + prev.width * 4);
      }
    }
    const f = frames[i];
    if (f.disposeOp === DISPOSE_PREVIOUS && i > 0 && i < last) region(canvas, width, f, saved, true);
    let img: { data: Buffer; width: number; height: number };
    try {
      img = await decode(f.png);
    } catch (e) {
      // Structure was checked by the split; what fails here is the frame's compressed data.
      throw new Error(`corrupt APNG: frame ${i} does not decode: ${(e as Error).message}`, { cause: e });
    }
    if (img.width !== f.width || img.height !== f.height || img.data.length !== f.width * f.height * 4) {
      throw corrupt(
        `frame ${i} decoded to ${img.width}x${img.height} (${img.data.length} bytes), expected ${f.width}x${f.height} RGBA`,
      );
    }
    draw(canvas, width, f, img.data);
  }
  return {
    data,
    width,
    height,
    pages,
    delays: only === undefined ? frames.map((f) => f.delayMs) : [frames[only].delayMs],
  };
}
