import { deflateSync } from 'node:zlib';

// A small APNG encoder for test fixtures (8-bit RGBA, filter type 0 on every row), written
// from the APNG spec, plus chunk-level helpers so tests can build malformed files.

export interface EncodeFrame {
  data: Buffer; // RGBA, width*height*4
  width: number;
  height: number;
  x?: number;
  y?: number;
  delayMs?: number;
  disposeOp?: 0 | 1 | 2;
  blendOp?: 0 | 1;
}

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

const TABLE = Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n >>> 0;
});
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** length, type, data, CRC(type + data) */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export interface RawChunk {
  type: string;
  data: Buffer;
}

/** Splits a (well-formed) PNG into chunks, without checks: for tests that edit chunks. */
export function readChunks(png: Buffer): RawChunk[] {
  const out: RawChunk[] = [];
  for (let off = 8; off + 12 <= png.length;) {
    const len = png.readUInt32BE(off);
    out.push({
      type: png.toString('latin1', off + 4, off + 8),
      data: Buffer.from(png.subarray(off + 8, off + 8 + len)),
    });
    off += 12 + len;
  }
  return out;
}

/** Writes chunks back into a PNG with fresh CRCs. */
export function writeChunks(chunks: RawChunk[]): Buffer {
  return Buffer.concat([SIGNATURE, ...chunks.map((c) => pngChunk(c.type, c.data))]);
}

/** zlib stream of the image: a filter-type byte (0, None) before each row. */
function imageData(data: Buffer, width: number, height: number): Buffer {
  if (data.length !== width * height * 4)
    throw new Error(`frame data is ${data.length} bytes, expected ${width * height * 4}`);
  const raw = Buffer.alloc(height * (1 + width * 4));
  for (let y = 0; y < height; y++) data.copy(raw, y * (1 + width * 4) + 1, y * width * 4, (y + 1) * width * 4);
  return deflateSync(raw);
}

/** Cuts deflated data into pieces of at most `size` bytes (several IDAT/fdAT chunks per frame). */
function pieces(z: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < z.length; o += size) out.push(z.subarray(o, o + size));
  return out.length ? out : [z];
}

export function encodeApng(
  frames: EncodeFrame[],
  canvas: { width: number; height: number },
  opts: {
    numPlays?: number;
    defaultImageIsFrame?: boolean;
    /** split image data into chunks of this size */ chunkSize?: number;
  } = {},
): Buffer {
  const defaultIsFrame = opts.defaultImageIsFrame ?? true;
  const chunkSize = opts.chunkSize ?? 1 << 20;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(canvas.width, 0);
  ihdr.writeUInt32BE(canvas.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA; compression, filter and interlace methods 0
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(frames.length, 0);
  actl.writeUInt32BE(opts.numPlays ?? 0, 4);
  const out: Buffer[] = [SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('acTL', actl)];
  let seq = 0;
  const fctl = (f: EncodeFrame) => {
    const d = Buffer.alloc(26);
    d.writeUInt32BE(seq++, 0);
    d.writeUInt32BE(f.width, 4);
    d.writeUInt32BE(f.height, 8);
    d.writeUInt32BE(f.x ?? 0, 12);
    d.writeUInt32BE(f.y ?? 0, 16);
    d.writeUInt16BE(f.delayMs ?? 100, 20); // delay_num / delay_den seconds
    d.writeUInt16BE(1000, 22);
    d[24] = f.disposeOp ?? 0;
    d[25] = f.blendOp ?? 0;
    return pngChunk('fcTL', d);
  };
  frames.forEach((f, i) => {
    if (i === 0 && defaultIsFrame) {
      if ((f.x ?? 0) !== 0 || (f.y ?? 0) !== 0 || f.width !== canvas.width || f.height !== canvas.height) {
        throw new Error('a default image that is frame 0 must cover the canvas');
      }
      out.push(fctl(f), ...pieces(imageData(f.data, f.width, f.height), chunkSize).map((p) => pngChunk('IDAT', p)));
      return;
    }
    if (i === 0) {
      // A default image outside the animation: opaque grey, shown only by non-APNG decoders.
      const grey = Buffer.alloc(canvas.width * canvas.height * 4, 128);
      for (let p = 3; p < grey.length; p += 4) grey[p] = 255;
      out.push(...pieces(imageData(grey, canvas.width, canvas.height), chunkSize).map((p) => pngChunk('IDAT', p)));
    }
    out.push(fctl(f));
    for (const p of pieces(imageData(f.data, f.width, f.height), chunkSize)) {
      const d = Buffer.alloc(4 + p.length);
      d.writeUInt32BE(seq++, 0);
      p.copy(d, 4);
      out.push(pngChunk('fdAT', d));
    }
  });
  out.push(pngChunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(out);
}
