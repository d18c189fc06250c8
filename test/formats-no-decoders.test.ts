import t from 'tap';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, SERVER_NAME, startTestRepo } from './helpers/repo.js';
import { audioFile, cornerImage, heicOf, installed, jxlOf, videoFile } from './helpers/media-files.js';

// A server on a machine without the external decoders (no heif-convert, djxl, ffmpeg or
// ffprobe on its PATH): start-up says which listed types lack their decoder, and those types
// are answered as "cannot thumbnail" (400 M_UNKNOWN), never a 500; uploads still work.

const tools = ['heif-enc', 'cjxl', 'ffmpeg'];
const missing = tools.filter((x) => !installed(x));
if (missing.length > 0) {
  t.comment(`skipped: ${missing.join(', ')} not installed (the fixtures need them)`);
  process.exit(0);
}

// The fixtures first, with the tools; then the server, with a PATH that has none of them.
const png = await (await cornerImage(128, 64)).png().toBuffer();
const files: [string, Buffer, string][] = [
  ['image/heic', heicOf(png, 'png'), 'heif-convert'],
  ['image/jxl', jxlOf(png, 'png'), 'djxl'],
  ['audio/mpeg', audioFile('mp3', 1), 'ffmpeg'],
  ['video/mp4', videoFile(64, 48, 1, 10), 'ffmpeg'],
];
// prlimit (and the `true` its check runs) stay: util-linux and coreutils are on every Debian
// system. Only the decoders are missing.
const emptyBin = mkdtempSync(join(tmpdir(), 'no-decoders-'));
for (const keep of ['prlimit', 'true']) symlinkSync(`/usr/bin/${keep}`, join(emptyBin, keep));
t.teardown(() => rmSync(emptyBin, { recursive: true, force: true }));
const savedPath = process.env.PATH;
process.env.PATH = emptyBin;
const repo = await startTestRepo('pglite', {
  thumbnails: { types: ['image/png', 'image/heic', 'image/jxl', 'audio/mpeg', 'video/mp4'], pregenerate: false },
});
process.env.PATH = savedPath;
t.teardown(() => repo.close());

t.test('start-up names each missing decoder and the listed types it leaves out', async (t) => {
  const lines = repo.logs.join('\n');
  t.match(lines, /external decoders/, 'one line for what the decoders can do');
  t.match(lines, /heif-convert is not installed.*image\/heic/);
  t.match(lines, /djxl is not installed.*image\/jxl/);
  t.match(lines, /ffmpeg is not installed.*audio\/mpeg, video\/mp4/);
});

t.test('those types answer "cannot thumbnail", and uploads still work', async (t) => {
  for (const [type, body, tool] of files) {
    const up = await repo.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'Content-Type': type },
      token: ALICE,
    });
    t.equal(up.status, 200, `${type}: uploaded`);
    const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const res = await repo.fetch(`/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?width=32&height=32`, {
      token: ALICE,
    });
    t.equal(res.status, 400, `${type}: 400`);
    const j = (await res.json()) as { errcode: string; error: string };
    t.equal(j.errcode, 'M_UNKNOWN');
    t.match(j.error, new RegExp(`${tool} is not installed`), `${type}: says which decoder is missing`);
    const dl = await repo.fetch(`/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, { token: ALICE });
    t.equal(dl.status, 200, `${type}: downloads as usual`);
    await dl.arrayBuffer();
  }
});

t.test('without prlimit no decoder is run at all, and the answer says why', async (t) => {
  const bare = mkdtempSync(join(tmpdir(), 'no-prlimit-'));
  t.teardown(() => rmSync(bare, { recursive: true, force: true }));
  const saved = process.env.PATH;
  process.env.PATH = bare;
  const r = await startTestRepo('pglite', { thumbnails: { types: ['image/heic'], pregenerate: false } });
  process.env.PATH = saved;
  t.teardown(() => r.close());
  t.match(r.logs.join('\n'), /prlimit \(util-linux\) does not work here: no external decoder is run/);
  const up = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(files[0]![1]),
    headers: { 'Content-Type': 'image/heic' },
    token: ALICE,
  });
  const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  const res = await r.fetch(`/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${id}?width=32&height=32`, {
    token: ALICE,
  });
  t.equal(res.status, 400);
  t.match(((await res.json()) as { error: string }).error, /prlimit \(util-linux\) is not installed/);
});
