import t, { type Test } from 'tap';
import sharp from 'sharp';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALICE, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';
import { withHeifTransforms } from './helpers/heif-edit.js';
import {
  audioFile,
  av1HeifOf,
  blueCorner,
  cornerImage,
  heicOf,
  hevcTrack,
  installed,
  jxlOf,
  videoFile,
  withBrands,
} from './helpers/media-files.js';
import { dims } from './helpers/images.js';

// The formats libvips (as sharp ships it) cannot decode, thumbnailed through their external
// decoders over real HTTP: HEVC-coded HEIC (orientation from irot/imir, EXIF ignored as the
// HEIF spec says), JPEG XL (orientation from its header), audio (cover art, else a waveform;
// duration, channels and 768 key samples in the media info), and video (first-frame still,
// and with animated=true the first seconds as an animated WebP). Every upload's answer carries
// a BlurHash, async PUTs included. Files are made here by heif-enc, cjxl and ffmpeg.

const tools = ['heif-enc', 'heif-convert', 'cjxl', 'djxl', 'ffmpeg', 'ffprobe'];
const missing = tools.filter((x) => !installed(x));
if (missing.length > 0) {
  t.comment(`skipped: ${missing.join(', ')} not installed (.ci/run installs them)`);
  process.exit(0);
}

const TYPES = [
  'image/jpeg',
  'image/png',
  'image/heif',
  'image/heic',
  'image/heic-sequence',
  'image/jxl',
  'audio/mpeg',
  'audio/ogg',
  'audio/flac',
  'audio/wav',
  'audio/mp4',
  'video/mp4',
];
// A page with an og:image, for the preview's BlurHash.
const pagePng = await (await cornerImage(64, 32)).png().toBuffer();
const pages = createServer((req, res) => {
  if (req.url === '/img.png') {
    res.writeHead(200, { 'Content-Type': 'image/png' }).end(pagePng);
    return;
  }
  res
    .writeHead(200, { 'Content-Type': 'text/html' })
    .end('<html><head><title>x</title><meta property="og:image" content="/img.png"></head></html>');
});
await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
t.teardown(() => pages.close());
const pageUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/page.html`;

const repo: TestRepo = await startTestRepo('pglite', {
  thumbnails: { types: TYPES, pregenerate: false },
  featureSupport: { MSC2448: { enabled: true } },
  urlPreviews: { allowedNetworks: ['127.0.0.1/32'] },
});
t.teardown(() => repo.close());

async function upload(body: Buffer, type = 'application/octet-stream'): Promise<{ id: string; blurhash?: string }> {
  const res = await repo.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': type },
    token: ALICE,
  });
  const j = (await res.json()) as { content_uri: string; 'xyz.amorgan.blurhash'?: string };
  if (res.status !== 200) throw new Error(`upload answered ${res.status}: ${JSON.stringify(j)}`);
  return { id: j.content_uri.split('/').pop()!, blurhash: j['xyz.amorgan.blurhash'] };
}

async function thumb(id: string, query: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await repo.fetch(`/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?${query}`, { token: ALICE });
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

/** Two sizes of one source: 96x96 crop and 320x240 scale, with the expected output sizes. */
async function twoSizes(t: Test, id: string, scaled: { width: number; height: number }, what: string) {
  const crop = await thumb(id, 'width=96&height=96&method=crop');
  t.equal(crop.status, 200, `${what}: 96x96 crop (${crop.body.toString('utf8', 0, 200)})`);
  t.match(await dims(crop.body), { width: 96, height: 96 }, `${what}: crop is 96x96`);
  const scale = await thumb(id, 'width=320&height=240&method=scale');
  t.equal(scale.status, 200, `${what}: 320x240 scale`);
  t.match(await dims(scale.body), scaled, `${what}: scale is ${scaled.width}x${scaled.height}`);
  t.match(scale.type, /^image\/(png|jpeg)$/, `${what}: a still is PNG or JPEG`);
  return scale.body;
}

t.test('HEIC: HEVC-coded, two sizes, orientation from irot and imir only', async (t) => {
  const png = await (await cornerImage(640, 320)).png().toBuffer();
  const plain = heicOf(png, 'png');
  const a = await upload(plain, 'image/heic');
  t.match(a.blurhash, /^[0-9A-Za-z#$%*+,\-.:;=?@[\]^_{|}~]{6,}$/, 'the upload answer has a BlurHash');
  const still = await twoSizes(t, a.id, { width: 320, height: 160 }, 'plain');
  t.same(await blueCorner(still), { top: true, left: true }, 'not turned');

  // irot 90 (anticlockwise): portrait, the top-left block now bottom-left.
  const turned = await upload(withHeifTransforms(plain, { rotation: 90 }), 'image/heic');
  const tb = await twoSizes(t, turned.id, { width: 120, height: 240 }, 'irot 90');
  t.same(await blueCorner(tb), { top: false, left: true }, 'turned once, anticlockwise');

  // imir 1 (left and right exchanged) after irot 0.
  const mirrored = await upload(withHeifTransforms(plain, { mirror: 1 }), 'image/heic');
  const mb = await twoSizes(t, mirrored.id, { width: 320, height: 160 }, 'imir');
  t.same(await blueCorner(mb), { top: true, left: false }, 'mirrored left to right');

  // A HEIC whose EXIF says orientation 6 but which has no irot: EXIF in HEIF is informative,
  // so the picture is not turned (a decoder that applied irot and EXIF would turn it twice).
  const jpeg = await (await cornerImage(640, 320)).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const exif = await upload(heicOf(jpeg, 'jpg'), 'image/heic');
  const eb = await twoSizes(t, exif.id, { width: 320, height: 160 }, 'EXIF 6 without irot');
  t.same(await blueCorner(eb), { top: true, left: true }, 'EXIF orientation ignored');

  const info = await repo.fetch(`/_matrix/media/unstable/info/${SERVER_NAME}/${a.id}`, { token: ALICE });
  t.match(await info.json(), { width: 640, height: 320 }, 'media info reads the size from the header');
});

t.test('AV1-coded HEIF (not branded AVIF) and HEIF image sequences', async (t) => {
  const png = await (await cornerImage(640, 320)).png().toBuffer();
  // AV1 in a plain mif1 file: libvips would call it AVIF only by its brand; libheif decodes it.
  const av1 = withBrands(av1HeifOf(png), 'mif1', ['mif1', 'miaf']);
  const a = await upload(av1, 'image/heif');
  const still = await twoSizes(t, a.id, { width: 320, height: 160 }, 'AV1 HEIF');
  t.same(await blueCorner(still), { top: true, left: true });
  // A sequence brand on a file that also has a still item: the still item is decoded.
  const seq = withBrands(heicOf(png, 'png'), 'msf1', ['msf1', 'hevc', 'mif1']);
  const s = await upload(seq, 'image/heic-sequence');
  await twoSizes(t, s.id, { width: 320, height: 160 }, 'HEIC sequence with a still item');
  // A sequence with no still item (an HEVC track only): its first frame through ffmpeg.
  const track = withBrands(hevcTrack(320, 240, 5), 'msf1', ['msf1', 'hevc', 'iso8']);
  const k = await upload(track, 'image/heic-sequence');
  await twoSizes(t, k.id, { width: 320, height: 240 }, 'HEVC track sequence');
});

t.test('JPEG XL: two sizes, orientation from its header, applied once', async (t) => {
  const png = await (await cornerImage(640, 320)).png().toBuffer();
  const a = await upload(jxlOf(png, 'png'), 'image/jxl');
  t.ok(a.blurhash, 'a BlurHash');
  const still = await twoSizes(t, a.id, { width: 320, height: 160 }, 'jxl');
  t.same(await blueCorner(still), { top: true, left: true });
  // A JPEG with EXIF orientation 6, recompressed: cjxl moves the orientation into the header.
  const jpeg = await (await cornerImage(640, 320)).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const turned = await upload(jxlOf(jpeg, 'jpg'), 'image/jxl');
  const tb = await twoSizes(t, turned.id, { width: 120, height: 240 }, 'jxl orientation 6');
  t.same(await blueCorner(tb), { top: true, left: false }, 'turned a quarter clockwise, once');
});

t.test('audio: cover art, else a waveform; media info with duration and key samples', async (t) => {
  const cover = await sharp({ create: { width: 300, height: 300, channels: 3, background: { r: 220, g: 20, b: 20 } } })
    .png()
    .toBuffer();
  const withCover = await upload(audioFile('mp3', 2, cover), 'audio/mpeg');
  t.ok(withCover.blurhash, 'audio gets a BlurHash too');
  const c = await thumb(withCover.id, 'width=96&height=96&method=crop');
  t.equal(c.status, 200);
  t.match(await dims(c.body), { width: 96, height: 96 });
  const { data } = await sharp(c.body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  t.ok(data[0]! > 180 && data[1]! < 80 && data[2]! < 80, 'the thumbnail is the red cover');
  for (const ext of ['ogg', 'flac', 'm4a', 'wav'] as const) {
    const a = await upload(audioFile(ext, 2), `audio/${ext === 'm4a' ? 'mp4' : ext}`);
    // The waveform is 1536x480: scaled into 320x240 it is 320x100.
    const body = await twoSizes(t, a.id, { width: 320, height: 100 }, `${ext} waveform`);
    const raw = await sharp(body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const mid = raw.data.subarray((50 * 320 + 160) * 3, (50 * 320 + 160) * 3 + 3);
    t.ok(mid[2]! > 200, `${ext}: the middle of a loud tone's waveform is drawn`);
    const info = await repo.fetch(`/_matrix/media/unstable/info/${SERVER_NAME}/${a.id}`, { token: ALICE });
    const j = (await info.json()) as {
      duration: number;
      num_channels: number;
      num_total_samples: number;
      key_samples: number[];
    };
    t.ok(Math.abs(j.duration - 2) < 0.1, `${ext}: duration ${j.duration} s`);
    t.equal(j.num_channels, 2, `${ext}: two channels`);
    const rate = ext === 'ogg' ? 48_000 : 44_100; // Opus decodes at 48 kHz whatever it was made from
    t.ok(
      Math.abs(j.num_total_samples - 2 * rate) < rate / 10,
      `${ext}: about ${2 * rate} samples (${j.num_total_samples})`,
    );
    t.equal(j.key_samples.length, 768, `${ext}: 768 key samples`);
    t.ok(
      j.key_samples.every((v) => v >= 0 && v <= 1),
      `${ext}: in 0..1`,
    );
    // ffmpeg's sine source has amplitude 1/8.
    const level = j.key_samples.slice(10, 700);
    t.ok(
      level.every((v) => v > 0.08 && v < 0.2),
      `${ext}: the tone's level throughout (${Math.min(...level)}..${Math.max(...level)})`,
    );
  }
});

t.test('video: a still, and with animated=true the first seconds as an animated WebP', async (t) => {
  const a = await upload(videoFile(320, 240, 5, 25), 'video/mp4');
  t.ok(a.blurhash, 'video gets a BlurHash');
  await twoSizes(t, a.id, { width: 320, height: 240 }, 'video still');
  const anim = await thumb(a.id, 'width=96&height=96&method=crop&animated=true');
  t.equal(anim.status, 200);
  t.equal(anim.type, 'image/webp');
  const d = await dims(anim.body);
  t.match(d, { width: 96, height: 96, format: 'webp' });
  t.equal(d.pages, 30, 'the first 3 s at 10 frames per second');
  const still = await thumb(a.id, 'width=96&height=96&method=crop&animated=false');
  t.equal((await dims(still.body)).pages, 1, 'animated=false stays a still');
});

t.test('async uploads (PUT) answer with the BlurHash too', async (t) => {
  const create = await repo.fetch('/_matrix/media/v1/create', { method: 'POST', token: ALICE });
  const mxc = ((await create.json()) as { content_uri: string }).content_uri;
  const id = mxc.split('/').pop()!;
  const png = await (await cornerImage(64, 32)).png().toBuffer();
  const res = await repo.fetch(`/_matrix/media/v3/upload/${SERVER_NAME}/${id}`, {
    method: 'PUT',
    body: new Uint8Array(png),
    headers: { 'Content-Type': 'image/png' },
    token: ALICE,
  });
  t.equal(res.status, 200);
  const j = (await res.json()) as Record<string, string>;
  t.match(j['xyz.amorgan.blurhash'], /^.{6,}$/, 'MSC2448 key on the PUT answer');
  t.same(Object.keys(j), ['xyz.amorgan.blurhash'], 'and nothing else');
});

t.test("preview_url carries the preview image's BlurHash (matrix:image:blurhash)", async (t) => {
  const res = await repo.fetch(`/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(pageUrl)}`, {
    token: ALICE,
  });
  t.equal(res.status, 200);
  const j = (await res.json()) as Record<string, unknown>;
  t.match(j['og:image'], /^mxc:\/\//);
  const upload = await repo.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(pagePng),
    headers: { 'Content-Type': 'image/png' },
    token: ALICE,
  });
  const same = ((await upload.json()) as Record<string, string>)['xyz.amorgan.blurhash'];
  t.equal(j['matrix:image:blurhash'], same, 'the BlurHash an upload of the same image gets');
});
