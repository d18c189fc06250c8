import t from 'tap';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { audioFile, cornerImage, heicOf, installed, videoFile } from './helpers/media-files.js';
import { dims } from './helpers/images.js';

// Hostile HEIC, JPEG XL, audio and video for the external decoders: each answered with a
// Matrix error (or, for a cover too big to use, the waveform instead), quickly, and the server
// still answering afterwards. Sizes are refused from our own header readers before a decoder
// runs; the decoders' time, memory and output caps catch what the headers cannot say.

const tools = ['heif-enc', 'heif-convert', 'djxl', 'ffmpeg', 'ffprobe'];
const missing = tools.filter((x) => !installed(x));
if (missing.length > 0) {
  t.comment(`skipped: ${missing.join(', ')} not installed (.ci/run installs them)`);
  process.exit(0);
}

const repo: TestRepo = await startTestRepo('pglite', {
  thumbnails: {
    types: ['image/png', 'image/heic', 'image/jxl', 'audio/mpeg', 'audio/wav', 'video/mp4'],
    pregenerate: false,
    // Room for the 50 MB cover below, so that the cover cap (not the source cap) is what acts.
    maxSourceBytes: 64 * 1024 * 1024,
  },
  uploads: { maxBytes: 64 * 1024 * 1024 },
});
t.teardown(() => repo.close());

async function upload(body: Buffer, type: string): Promise<string> {
  const res = await repo.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': type },
    token: ALICE,
  });
  if (res.status !== 200) throw new Error(`upload answered ${res.status}`);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function thumb(id: string, query = 'width=96&height=96&method=crop') {
  const started = Date.now();
  const res = await repo.fetch(`/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?${query}`, {
    token: ALICE,
    signal: AbortSignal.timeout(30_000),
  });
  const body = Buffer.from(await res.arrayBuffer());
  let errcode: string | undefined;
  try {
    errcode = (JSON.parse(body.toString('utf8')) as { errcode?: string }).errcode;
  } catch {
    errcode = undefined;
  }
  return { status: res.status, errcode, body, ms: Date.now() - started };
}

/** Offsets of every box of `type` (its size field) in a file. */
function boxesOf(b: Buffer, type: string): number[] {
  const out: number[] = [];
  for (let i = b.indexOf(type); i >= 4; i = b.indexOf(type, i + 1)) out.push(i - 4);
  return out;
}

const png = await (await cornerImage(640, 320)).png().toBuffer();
const heic = heicOf(png, 'png');

t.test('a HEIC declaring 100000x100000 is refused from its header (413), no decoder run', async (t) => {
  const big = Buffer.from(heic);
  for (const at of boxesOf(big, 'ispe')) {
    big.writeUInt32BE(100_000, at + 12);
    big.writeUInt32BE(100_000, at + 16);
  }
  const r = await thumb(await upload(big, 'image/heic'));
  t.equal(r.status, 413);
  t.equal(r.errcode, 'M_TOO_LARGE');
  t.match(r.body.toString(), /100000x100000 pixels/);
});

t.test('a HEIC grid of 65535x65535 (the most 16-bit fields hold) is refused (413)', async (t) => {
  // libheif 1.15 stores a small picture as a 1x1 grid whose ImageGrid lies in idat.
  const grid = Buffer.from(heicOf(await (await cornerImage(64, 32)).png().toBuffer(), 'png'));
  const idat = boxesOf(grid, 'idat')[0]!;
  grid.writeUInt16BE(65535, idat + 8 + 4);
  grid.writeUInt16BE(65535, idat + 8 + 6);
  for (const at of boxesOf(grid, 'ispe')) {
    grid.writeUInt32BE(65535, at + 12);
    grid.writeUInt32BE(65535, at + 16);
  }
  const r = await thumb(await upload(grid, 'image/heic'));
  t.equal(r.status, 413);
  t.match(r.body.toString(), /65535x65535/);
});

t.test('a truncated HEIC: its header reads, its decoder fails: 400 M_UNKNOWN', async (t) => {
  const r = await thumb(await upload(heic.subarray(0, Math.floor(heic.length * 0.6)), 'image/heic'));
  t.equal(r.status, 400);
  t.equal(r.errcode, 'M_UNKNOWN');
  t.match(r.body.toString(), /Could not decode the image/);
  const cutHeader = await thumb(await upload(heic.subarray(0, 40), 'image/heic'));
  t.equal(cutHeader.status, 400, 'cut inside its header');
  t.match(cutHeader.body.toString(), /Could not read the image header/);
});

/** A bare JPEG XL codestream header declaring w x h (LSB-first bits, as the format has them). */
function jxlHeader(w: number, h: number): Buffer {
  const bits: number[] = [];
  const put = (v: number, n: number) => {
    for (let i = 0; i < n; i++) bits.push(Math.floor(v / 2 ** i) % 2);
  };
  put(0, 1); // div8: no
  put(3, 2); // height: U32 selector 3 → 30 bits of height - 1
  put(h - 1, 30);
  put(0, 3); // no ratio: the width follows
  put(3, 2);
  put(w - 1, 30);
  put(1, 1); // ImageMetadata all_default
  const out = Buffer.alloc(2 + Math.ceil(bits.length / 8) + 64);
  out[0] = 0xff;
  out[1] = 0x0a;
  bits.forEach((b, i) => (out[2 + (i >> 3)]! |= b << (i & 7)));
  return out;
}

t.test('a JPEG XL bomb (100000x100000 in 20 bytes) is refused from its header (413)', async (t) => {
  const r = await thumb(await upload(jxlHeader(100_000, 100_000), 'image/jxl'));
  t.equal(r.status, 413);
  t.match(r.body.toString(), /100000x100000 pixels/);
  const small = await thumb(await upload(jxlHeader(64, 64), 'image/jxl'));
  t.equal(small.status, 400, 'a small header with no image behind it: the decoder fails, 400');
  t.equal(small.errcode, 'M_UNKNOWN');
});

t.test('an MP3 whose cover is 50 MB: the cover is not used, the waveform is', async (t) => {
  const noise = await sharp(randomBytes(4096 * 4096 * 3), { raw: { width: 4096, height: 4096, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  t.ok(noise.length > 50_000_000, `the cover is ${noise.length} bytes`);
  const r = await thumb(await upload(audioFile('mp3', 1, noise), 'audio/mpeg'), 'width=320&height=240&method=scale');
  t.equal(r.status, 200);
  t.match(await dims(r.body), { width: 320, height: 100 }, "the waveform's shape, not the square cover's");
});

t.test('audio that lies about its length: the info says what it holds', async (t) => {
  const wav = Buffer.from(audioFile('wav', 2));
  // RIFF and data chunk sizes claiming an hour of 44.1 kHz stereo 16-bit.
  const hour = 3600 * 44100 * 4;
  wav.writeUInt32LE(hour + 36, 4);
  wav.writeUInt32LE(hour, wav.indexOf('data') + 4);
  const id = await upload(wav, 'audio/wav');
  const info = (await (
    await repo.fetch(`/_matrix/media/unstable/info/${SERVER_NAME}/${id}`, { token: ALICE })
  ).json()) as { duration: number; key_samples: number[] };
  t.ok(Math.abs(info.duration - 2) < 0.1, `decoded length 2 s, not the claimed hour (${info.duration})`);
  t.equal(info.key_samples.length, 768);
  t.ok(info.key_samples[700]! > 0, 'the waveform spans what the file holds, not an hour of it');
  const r = await thumb(id);
  t.equal(r.status, 200, 'and it thumbnails');
});

t.test('a video of 100000 tiny frames: the animation stops at 30, quickly', async (t) => {
  const id = await upload(videoFile(16, 16, 100, 1000, true), 'video/mp4');
  const r = await thumb(id, 'width=32&height=32&method=crop&animated=true');
  t.equal(r.status, 200);
  const d = await dims(r.body);
  t.match(d, { width: 16, height: 16, format: 'webp' }, 'never upscaled');
  t.ok(d.pages <= 30, `${d.pages} frames`);
});

t.test('garbage claiming to be HEIC, JPEG XL or audio is refused as what it is', async (t) => {
  // Fixed bytes (random ones could now and then spell a valid header and a 413).
  const filler = (n: number) => Buffer.alloc(n, 0x55);
  for (const [body, type] of [
    [Buffer.concat([Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic'), filler(200)]), 'image/heic'],
    [Buffer.from([0xff, 0x0a, 0x00]), 'image/jxl'],
    [Buffer.concat([Buffer.from('ID3\x03\0\0\0\0\0\x10'), filler(300)]), 'audio/mpeg'],
  ] as const) {
    const r = await thumb(await upload(body, type));
    t.equal(r.status, 400, `${type}: 400`);
    t.equal(r.errcode, 'M_UNKNOWN');
  }
});

t.test('the server still answers', async (t) => {
  const r = await thumb(await upload(png, 'image/png'));
  t.equal(r.status, 200);
});
