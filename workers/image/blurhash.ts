// BlurHash (https://github.com/woltapp/blurhash/blob/master/Algorithm.md, used by MSC2448).
// Works on raw pixels only: the calling worker decodes and downscales with sharp first.
//
// The image is projected onto cos(pi*i*x/w) * cos(pi*j*y/h). That basis is separable, so each
// axis gets a precomputed cosine table and the sums run in two passes (rows, then columns):
// O(w*h*x + h*x*y) multiply-adds and only (w*x + h*y) cosine calls.

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';
const DIGIT = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));
/** sRGB byte -> linear light, as a table: the encoder looks up every pixel three times. */
const SRGB_TO_LINEAR = Float64Array.from({ length: 256 }, (_, b) => {
  const v = b / 255;
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
});

// Rounds to nearest like the C and Python reference encoders (the npm TypeScript one adds a
// further 0.5 and can be one higher, woltapp/blurhash#13).
function linearToSrgb(value: number): number {
  const v = Math.min(1, Math.max(0, value));
  return Math.round(v <= 0.0031308 ? v * 12.92 * 255 : (1.055 * Math.pow(v, 1 / 2.4) - 0.055) * 255);
}

/** Sign-preserving power: AC values are stored on a square-root scale to favour small amplitudes. */
const signPow = (v: number, exp: number) => Math.sign(v) * Math.pow(Math.abs(v), exp);

function encode83(value: number, length: number): string {
  let out = '';
  for (let i = length - 1; i >= 0; i--) out += ALPHABET[Math.floor(value / 83 ** i) % 83];
  return out;
}

function decode83(s: string): number {
  let value = 0;
  for (const c of s) {
    const d = DIGIT.get(c);
    if (d === undefined) throw new Error(`invalid blurhash: bad character ${JSON.stringify(c)}`);
    value = value * 83 + d;
  }
  return value;
}

/** table[k * n + p] = cos(pi * k * p / n) for k < components; p is the pixel index on that axis. */
function cosTable(components: number, n: number): Float64Array {
  const table = new Float64Array(components * n);
  for (let k = 0; k < components; k++) for (let p = 0; p < n; p++) table[k * n + p] = Math.cos((Math.PI * k * p) / n);
  return table;
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`blurhash: width and height must be positive integers, got ${width}x${height}`);
  }
}

/** Encodes raw pixels (channels 3 or 4; alpha ignored) into a BlurHash string. xComponents/yComponents 1..9 (throw RangeError otherwise). */
export function encodeBlurhash(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: 3 | 4,
  xComponents: number,
  yComponents: number,
): string {
  for (const c of [xComponents, yComponents]) {
    if (!Number.isInteger(c) || c < 1 || c > 9) throw new RangeError(`blurhash: components must be 1..9, got ${c}`);
  }
  checkSize(width, height);
  if (channels !== 3 && channels !== 4) throw new RangeError(`blurhash: channels must be 3 or 4, got ${channels}`);
  if (pixels.length < width * height * channels)
    throw new RangeError('blurhash: pixel buffer is shorter than width*height*channels');

  const nx = xComponents,
    ny = yComponents;
  const cx = cosTable(nx, width),
    cy = cosTable(ny, height);
  // Pass 1: per row y, rows[(y*nx + i)*3 + c] = sum over x of cos_i(x) * linear(pixel).
  const rows = new Float64Array(height * nx * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * channels;
      const r = SRGB_TO_LINEAR[pixels[p]!]!,
        g = SRGB_TO_LINEAR[pixels[p + 1]!]!,
        b = SRGB_TO_LINEAR[pixels[p + 2]!]!;
      for (let i = 0; i < nx; i++) {
        const w = cx[i * width + x]!,
          o = (y * nx + i) * 3;
        rows[o] += w * r;
        rows[o + 1] += w * g;
        rows[o + 2] += w * b;
      }
    }
  }
  // Pass 2: factors[(j*nx + i)*3 + c] = scale * sum over y of cos_j(y) * rows; the DC term is a
  // plain mean (normalisation 1), the AC terms take normalisation 2.
  const factors = new Float64Array(nx * ny * 3);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const scale = (i === 0 && j === 0 ? 1 : 2) / (width * height),
        o = (j * nx + i) * 3;
      let r = 0,
        g = 0,
        b = 0;
      for (let y = 0; y < height; y++) {
        const w = cy[j * height + y]!,
          q = (y * nx + i) * 3;
        r += w * rows[q]!;
        g += w * rows[q + 1]!;
        b += w * rows[q + 2]!;
      }
      factors[o] = r * scale;
      factors[o + 1] = g * scale;
      factors[o + 2] = b * scale;
    }
  }

  let hash = encode83(nx - 1 + (ny - 1) * 9, 1);
  let maxValue = 1;
  if (factors.length > 3) {
    let actualMax = 0;
    for (let k = 3; k < factors.length; k++) actualMax = Math.max(actualMax, Math.abs(factors[k]!));
    const quantisedMax = Math.max(0, Math.min(82, Math.floor(actualMax * 166 - 0.5)));
    maxValue = (quantisedMax + 1) / 166;
    hash += encode83(quantisedMax, 1);
  } else {
    hash += encode83(0, 1);
  }
  hash += encode83((linearToSrgb(factors[0]!) << 16) + (linearToSrgb(factors[1]!) << 8) + linearToSrgb(factors[2]!), 4);
  const quant = (v: number) => Math.max(0, Math.min(18, Math.floor(signPow(v / maxValue, 0.5) * 9 + 9.5)));
  for (let k = 3; k < factors.length; k += 3) {
    hash += encode83(quant(factors[k]!) * 19 * 19 + quant(factors[k + 1]!) * 19 + quant(factors[k + 2]!), 2);
  }
  return hash;
}

/** Decodes a BlurHash to RGBA pixels (for tests and previews); punch scales the AC components (default 1). Throws on an invalid hash (bad length or characters). */
export function decodeBlurhash(hash: string, width: number, height: number, punch = 1): Uint8ClampedArray {
  checkSize(width, height);
  if (typeof hash !== 'string' || hash.length < 6) throw new Error('invalid blurhash: too short');
  const sizeFlag = decode83(hash[0]!);
  const nx = (sizeFlag % 9) + 1,
    ny = Math.floor(sizeFlag / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny)
    throw new Error(`invalid blurhash: length ${hash.length}, expected ${4 + 2 * nx * ny} for ${nx}x${ny}`);
  const maxValue = ((decode83(hash[1]!) + 1) / 166) * punch;

  const colors = new Float64Array(nx * ny * 3);
  const dc = decode83(hash.slice(2, 6));
  if (dc > 0xffffff) throw new Error('invalid blurhash: DC component out of range');
  colors[0] = SRGB_TO_LINEAR[dc >> 16]!;
  colors[1] = SRGB_TO_LINEAR[(dc >> 8) & 255]!;
  colors[2] = SRGB_TO_LINEAR[dc & 255]!;
  for (let k = 1; k < nx * ny; k++) {
    const v = decode83(hash.slice(4 + 2 * k, 6 + 2 * k));
    // Two base83 digits reach 6888, past 19^3 - 1: such a hash is corrupt, not just lossy.
    if (v >= 19 * 19 * 19) throw new Error('invalid blurhash: AC component out of range');
    const q = [Math.floor(v / (19 * 19)), Math.floor(v / 19) % 19, v % 19];
    for (let c = 0; c < 3; c++) colors[k * 3 + c] = signPow((q[c]! - 9) / 9, 2) * maxValue;
  }

  const cx = cosTable(nx, width),
    cy = cosTable(ny, height);
  const out = new Uint8ClampedArray(width * height * 4);
  const col = new Float64Array(nx * 3); // per row y: sum over j of cos_j(y) * colors, per i
  for (let y = 0; y < height; y++) {
    col.fill(0);
    for (let j = 0; j < ny; j++) {
      const w = cy[j * height + y]!;
      for (let k = 0; k < nx * 3; k++) col[k] += w * colors[j * nx * 3 + k]!;
    }
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let i = 0; i < nx; i++) {
        const w = cx[i * width + x]!;
        r += w * col[i * 3]!;
        g += w * col[i * 3 + 1]!;
        b += w * col[i * 3 + 2]!;
      }
      const p = (y * width + x) * 4;
      out[p] = linearToSrgb(r);
      out[p + 1] = linearToSrgb(g);
      out[p + 2] = linearToSrgb(b);
      out[p + 3] = 255;
    }
  }
  return out;
}
