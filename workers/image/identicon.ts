// Deterministic identicons for GET /_matrix/media/r0/identicon/{seed}: raw RGBA only, the calling
// worker encodes it (PNG) with sharp.
//
// Design: sha256(seed) drives a 5x5 grid mirrored left-right (faces and logos read as symmetric,
// and mirroring halves the bits needed: 15 cells), one foreground colour and a fixed light
// background. The grid plus a half-cell margin on every side (6 cell units) is fitted into the
// smaller side of the image and centred; the rest of the image is background.
import { createHash } from 'node:crypto';

const GRID = 5;
const HALF = Math.ceil(GRID / 2); // columns 0..2 come from the hash; 3..4 mirror 1..0
const MAX_SIDE = 1024;
const BACKGROUND = [240, 240, 240, 255] as const;
// Fixed saturation and lightness keep every hue readable against the light background.
const SATURATION = 0.6;
const LIGHTNESS = 0.45;

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = h / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r, g, b] =
    hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = l - c / 2;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** cells[row * GRID + col]: on/off, already mirrored, never all off. */
function gridFromHash(digest: Buffer): boolean[] {
  const bits = digest.readUInt16BE(0); // low 15 bits: one per cell of the left half + centre column
  const cells = new Array<boolean>(GRID * GRID).fill(false);
  let any = false;
  for (let row = 0; row < GRID; row++) {
    for (let col = 0; col < HALF; col++) {
      const on = ((bits >> (row * HALF + col)) & 1) === 1;
      cells[row * GRID + col] = cells[row * GRID + (GRID - 1 - col)] = on;
      any ||= on;
    }
  }
  // An all-background icon identifies nobody (1 seed in 32768): light the centre instead.
  if (!any) cells[Math.floor(GRID / 2) * GRID + Math.floor(GRID / 2)] = true;
  return cells;
}

/**
 * Grid cell index (or -1 for margin) of each pixel along one axis of the side x side square,
 * sampled at the pixel centre. Pixels right of the middle reuse their mirror image's answer
 * (4 - cell), so the rendering is pixel-exact symmetric even where cell edges fall between
 * pixels unevenly; rows get the same treatment, which keeps vertical placement centred too.
 */
function cellIndex(side: number): Int8Array {
  const units = GRID + 1; // 5 cells + half a cell each side
  const out = new Int8Array(side);
  for (let p = 0; p < side; p++) {
    const q = Math.min(p, side - 1 - p);
    // Cell coordinate of q's centre: (q + 0.5) * units / side - 0.5, kept in integers.
    const n = (2 * q + 1) * units - side;
    const cell = n < 0 ? -1 : Math.floor(n / (2 * side));
    out[p] = cell < 0 || cell >= GRID ? -1 : q === p ? cell : GRID - 1 - cell;
  }
  return out;
}

export function renderIdenticon(
  seed: string,
  width: number,
  height: number,
): { data: Buffer; width: number; height: number; channels: 4 } {
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE)
      throw new RangeError(`identicon ${name} must be an integer 1..${MAX_SIDE}, got ${v}`);
  }
  const digest = createHash('sha256').update(seed, 'utf8').digest();
  const cells = gridFromHash(digest);
  // Hue from bytes not used by the grid, so pattern and colour vary independently.
  const [fr, fg, fb] = hslToRgb(digest.readUInt16BE(30) % 360, SATURATION, LIGHTNESS);

  const data = Buffer.alloc(width * height * 4, Buffer.from(BACKGROUND));
  const side = Math.min(width, height);
  const ox = Math.floor((width - side) / 2),
    oy = Math.floor((height - side) / 2);
  const index = cellIndex(side);
  for (let y = 0; y < side; y++) {
    const row = index[y]!;
    if (row < 0) continue;
    for (let x = 0; x < side; x++) {
      const col = index[x]!;
      if (col < 0 || !cells[row * GRID + col]) continue;
      const p = ((oy + y) * width + ox + x) * 4;
      data[p] = fr;
      data[p + 1] = fg;
      data[p + 2] = fb; // alpha is already 255
    }
  }
  return { data, width, height, channels: 4 };
}
