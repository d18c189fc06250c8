// JPEG XL header reader, run on untrusted bytes before any decoder sees them: a "JPEG XL bomb" is
// a small file whose header declares an enormous size, and the caller's pixel limit can only refuse
// it if the size is known without decoding. Reads the codestream's SizeHeader and the start of its
// ImageMetadata (orientation, animation flag) as defined in ISO/IEC 18181-1, either from a bare
// codestream or from inside the ISO-BMFF container (ISO/IEC 18181-2). Every read is bounds-checked
// and every failure caused by the bytes is an Error whose message starts 'corrupt JPEG XL: '.

export interface JxlHeader {
  /** Stored size, before orientation is applied. */
  width: number;
  height: number;
  /** 1..8, with the meanings of EXIF orientation. */
  orientation: number;
  /** Size as shown: width and height swapped for orientations 5..8, which transpose. */
  displayWidth: number;
  displayHeight: number;
  /** true when the codestream came from an ISO-BMFF container, false for a bare codestream. */
  container: boolean;
  hasAnimation: boolean;
}

const CODESTREAM_SIGNATURE = [0xff, 0x0a];
// The whole signature box: size 12, type 'JXL ', content 0D 0A 87 0A.
const CONTAINER_SIGNATURE = [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a];
// The fields read here end within 24 bytes of the codestream's start (at most 192 bits with an
// intrinsic size and a preview header), so this many bytes of jxlp payload always suffice.
const CODESTREAM_PREFIX_BYTES = 64;
const JXLP_LAST = 0x80000000;

const corrupt = (why: string) => new Error(`corrupt JPEG XL: ${why}`);
const startsWith = (b: Uint8Array, sig: number[]) => b.length >= sig.length && sig.every((v, i) => b[i] === v);

export function isJxl(b: Uint8Array): boolean {
  return startsWith(b, CODESTREAM_SIGNATURE) || startsWith(b, CONTAINER_SIGNATURE);
}

/** Reads bits least significant first within each byte, as 18181-1 defines; throws when the bytes run out. */
class BitReader {
  private pos = 0; // in bits

  constructor(private readonly bytes: Uint8Array) {}

  /** n <= 30, so the value stays a non-negative 32-bit integer. */
  bits(n: number): number {
    if (this.pos + n > this.bytes.length * 8) throw corrupt('truncated codestream header');
    let v = 0;
    for (let i = 0; i < n; i++, this.pos++) {
      v |= ((this.bytes[this.pos >>> 3] >>> (this.pos & 7)) & 1) << i;
    }
    return v >>> 0;
  }

  bool(): boolean {
    return this.bits(1) === 1;
  }

  /** U32(d0, d1, d2, d3): a 2-bit selector picks one distribution, each an offset plus n bits. */
  u32(dists: readonly (readonly [offset: number, n: number])[]): number {
    const [offset, n] = dists[this.bits(2)];
    return offset + this.bits(n);
  }
}

const SIZE_DIST = [
  [1, 9],
  [1, 13],
  [1, 18],
  [1, 30],
] as const;
const PREVIEW_DIV8_DIST = [
  [16, 0],
  [32, 0],
  [1, 5],
  [33, 9],
] as const;
const PREVIEW_DIST = [
  [1, 6],
  [65, 8],
  [321, 10],
  [1345, 12],
] as const;

/** Width from the 3-bit ratio code (1..7). The spec's integer division: floor(height * num / den). */
function ratioWidth(ratio: number, height: number): number {
  const [num, den] = [
    [1, 1],
    [12, 10],
    [4, 3],
    [3, 2],
    [16, 9],
    [5, 4],
    [2, 1],
  ][ratio - 1];
  return Math.floor((height * num) / den); // exact: height <= 2^30, so the product stays below 2^53
}

/** SizeHeader (also the layout of the intrinsic size). */
function readSize(r: BitReader): { width: number; height: number } {
  const div8 = r.bool();
  const height = div8 ? (r.bits(5) + 1) * 8 : r.u32(SIZE_DIST);
  const ratio = r.bits(3);
  if (ratio !== 0) return { width: ratioWidth(ratio, height), height };
  const width = div8 ? (r.bits(5) + 1) * 8 : r.u32(SIZE_DIST);
  return { width, height };
}

/** PreviewHeader: read only to get past it to have_animation. */
function skipPreview(r: BitReader): void {
  const div8 = r.bool();
  const readDim = () => (div8 ? r.u32(PREVIEW_DIV8_DIST) : r.u32(PREVIEW_DIST));
  readDim();
  if (r.bits(3) === 0) readDim();
}

function readCodestreamHeader(cs: Uint8Array, container: boolean): JxlHeader {
  if (!startsWith(cs, CODESTREAM_SIGNATURE)) {
    throw corrupt(cs.length < 2 ? 'truncated codestream signature' : 'codestream does not start with FF 0A');
  }
  const r = new BitReader(cs.subarray(2));
  const { width, height } = readSize(r);
  let orientation = 1,
    hasAnimation = false;
  const allDefault = r.bool();
  if (!allDefault && r.bool() /* extra_fields */) {
    orientation = 1 + r.bits(3);
    if (r.bool() /* have_intrinsic_size */) readSize(r);
    if (r.bool() /* have_preview */) skipPreview(r);
    hasAnimation = r.bool();
  }
  const transposed = orientation >= 5;
  return {
    width,
    height,
    orientation,
    displayWidth: transposed ? height : width,
    displayHeight: transposed ? width : height,
    container,
    hasAnimation,
  };
}

/**
 * The start of the codestream inside a container: a jxlc box's payload, or the payloads of the
 * jxlp boxes (each after its 4-byte index) joined in order, other boxes allowed in between. A box
 * that runs past the end is used as far as it goes: the header may still be complete. Each step
 * advances at least 8 bytes, so the walk ends.
 */
function containerCodestream(b: Uint8Array): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const parts: Uint8Array[] = [];
  let collected = 0;
  const joined = () => {
    const out = new Uint8Array(collected);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };
  for (let off = 0; off < b.length;) {
    // Cut short after some jxlp payload: that may already hold the whole header, and the bit reader
    // says if it does not.
    if (off + 8 > b.length) {
      if (parts.length) break;
      throw corrupt(`truncated box header at ${off}`);
    }
    let size = dv.getUint32(off);
    let headerSize = 8;
    const type = String.fromCharCode(b[off + 4], b[off + 5], b[off + 6], b[off + 7]);
    if (size === 1) {
      if (off + 16 > b.length) {
        if (parts.length) break;
        throw corrupt(`truncated box header at ${off}`);
      }
      // Above 2^53 this only loses precision: the size is still past the end.
      size = dv.getUint32(off + 8) * 2 ** 32 + dv.getUint32(off + 12);
      headerSize = 16;
    } else if (size === 0) {
      size = b.length - off; // the box runs to the end of the file
    }
    if (size < headerSize) throw corrupt(`box '${type}' at ${off} has size ${size}, less than its header`);
    const end = Math.min(off + size, b.length);
    const payload = b.subarray(off + headerSize, end);
    if (type === 'jxlc') {
      if (parts.length) throw corrupt(`jxlc box at ${off} after jxlp boxes`);
      return payload;
    }
    if (type === 'jxlp') {
      if (payload.length < 4) {
        if (parts.length && off + size > b.length) break;
        throw corrupt(`truncated jxlp index at ${off}`);
      }
      const index = dv.getUint32(off + headerSize);
      if ((index & ~JXLP_LAST) >>> 0 !== parts.length) {
        throw corrupt(`jxlp box at ${off} has index ${index & ~JXLP_LAST}, expected ${parts.length}`);
      }
      const data = payload.subarray(4, 4 + Math.max(0, CODESTREAM_PREFIX_BYTES - collected));
      parts.push(data);
      collected += data.length;
      if ((index & JXLP_LAST) !== 0 || collected >= CODESTREAM_PREFIX_BYTES) return joined();
    }
    off = end; // the file's end when the box was cut short, which ends the walk
  }
  if (parts.length) return joined();
  throw corrupt('no jxlc or jxlp box');
}

export function readJxlHeader(b: Uint8Array): JxlHeader {
  if (startsWith(b, CODESTREAM_SIGNATURE)) return readCodestreamHeader(b, false);
  if (startsWith(b, CONTAINER_SIGNATURE)) return readCodestreamHeader(containerCodestream(b), true);
  throw corrupt('no JPEG XL signature');
}
