import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DirPartSink } from '../src/archive/dir-sink.js';
import { writeExport, type ExportItem } from '../src/archive/export-archive.js';
import { parseManifest } from '../src/archive/manifest.js';
import { MANIFEST_PART_NAME, PartSplitter } from '../src/archive/part-writer.js';
import { ArchiveReader } from '../src/archive/read-archive.js';
import { readTarGz } from '../src/archive/tar-reader.js';

// Archives in MMR's v2 layout written to real files and read back: by our reader (in any
// part order) and by the system's tar, so other tools (and MMR, which uses Go's archive/tar)
// can read what we write.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Media {
  origin: string;
  mediaId: string;
  body: Buffer;
  uploadName: string | null;
  contentType: string | null;
}

function item(m: Media): ExportItem {
  return {
    origin: m.origin,
    mediaId: m.mediaId,
    uploadName: m.uploadName,
    contentType: m.contentType,
    sizeBytes: m.body.length,
    creationTs: 1_700_000_000_000,
    uploader: `@alice:${m.origin}`,
    s3Url: null,
    sha256: sha(m.body),
    open: () => Readable.from([m.body.subarray(0, 7), m.body.subarray(7)].filter((b) => b.length > 0)),
  };
}

async function* each<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

async function tempDir(t: Test): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'archive-format-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function entriesOf(path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const e of readTarGz(createReadStream(path), path)) {
    const chunks: Buffer[] = [];
    for await (const c of e.stream as AsyncIterable<Buffer>) chunks.push(c);
    out.set(e.name, Buffer.concat(chunks));
  }
  return out;
}

const LONG_ID = `L${'x'.repeat(150)}`;
const MEDIA: Media[] = [
  { origin: 'example.org', mediaId: 'empty', body: Buffer.alloc(0), uploadName: null, contentType: null },
  {
    origin: 'example.org',
    mediaId: LONG_ID,
    body: randomBytes(3000),
    uploadName: 'long.png',
    contentType: 'image/png',
  },
  {
    origin: 'example.org',
    mediaId: 'evil',
    body: randomBytes(10),
    uploadName: '<script>alert("x")</script>&\'.txt',
    contentType: 'text/plain"><b>',
  },
  ...Array.from({ length: 20 }, (_, i) => ({
    origin: 'localhost:8448',
    mediaId: `m${String(i).padStart(2, '0')}`,
    body: randomBytes(1000 + i * 37),
    uploadName: `f${i}.bin`,
    contentType: 'application/octet-stream',
  })),
];

t.test('an export round-trips through real files, read in reverse part order', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each(MEDIA.map(item)), {
    entityId: '@alice:example.org',
    targetBytesPerPart: 4096,
    sink: new DirPartSink(dir),
    now: () => 1_700_000_123_000,
  });
  t.equal(res.media, MEDIA.length);
  t.ok(res.parts.length >= 5, `several parts (${res.parts.length})`);
  const files = (await readdir(dir)).sort();
  t.notOk(
    files.some((f) => f.endsWith('.partial')),
    'no partial files left',
  );
  const last = res.parts[res.parts.length - 1]!;
  t.equal(last.fileName, MANIFEST_PART_NAME, 'manifest part comes last, named as MMR names it');
  t.same(
    res.parts.slice(0, -1).map((p) => p.fileName),
    res.parts.slice(0, -1).map((_, i) => `export-part-${i + 1}.tgz`),
  );
  for (const p of res.parts) t.equal((await stat(join(dir, p.fileName))).size, p.sizeBytes, `${p.fileName} size`);
  t.same([...(await entriesOf(join(dir, last.fileName))).keys()], ['manifest.json', 'index.html']);

  const reversed = [...res.parts]
    .reverse()
    .map((p) => ({ name: p.fileName, open: () => createReadStream(join(dir, p.fileName)) }));
  const reader = await ArchiveReader.open(reversed);
  t.same(reader.missing, []);
  t.same(reader.unlisted, []);
  t.equal(reader.manifest.entity_id, '@alice:example.org');
  t.equal(reader.manifest.created_ts, 1_700_000_123_000);
  const got = new Map<string, Buffer>();
  for await (const it of reader.items()) {
    const chunks: Buffer[] = [];
    for await (const c of it.open() as AsyncIterable<Buffer>) chunks.push(c);
    got.set(it.mxc, Buffer.concat(chunks));
  }
  t.equal(got.size, MEDIA.length);
  for (const m of MEDIA)
    t.ok(got.get(`mxc://${m.origin}/${m.mediaId}`)?.equals(m.body), `${m.mediaId.slice(0, 10)} bytes`);
  const long = reader.manifest.media[`mxc://example.org/${LONG_ID}`]!;
  t.equal(long.file_name, `example.org__${LONG_ID}.png`, 'names over 100 bytes are kept whole');
  t.equal(reader.manifest.media['mxc://example.org/empty']!.size_bytes, 0);
});

t.test('parts split at the target after a whole entry', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each(MEDIA.map(item)), {
    entityId: 'x',
    targetBytesPerPart: 4096,
    sink: new DirPartSink(dir),
  });
  for (const p of res.parts.slice(0, -2)) {
    // Each full part passed the target: its tar bytes (decompressed) are at least 4096.
    const bytes = execFileSync('sh', ['-c', `gzip -dc '${join(dir, p.fileName)}' | wc -c`])
      .toString()
      .trim();
    t.ok(Number(bytes) >= 4096, `${p.fileName} holds ${bytes} tar bytes`);
  }
});

t.test('manifest.json has exactly MMR v2 field names', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each(MEDIA.slice(0, 3).map(item)), {
    entityId: '@alice:example.org',
    targetBytesPerPart: 1 << 20,
    sink: new DirPartSink(dir),
  });
  const entries = await entriesOf(join(dir, res.parts[res.parts.length - 1]!.fileName));
  const raw = JSON.parse(entries.get('manifest.json')!.toString('utf8')) as Record<string, unknown>;
  t.same(Object.keys(raw).sort(), ['created_ts', 'entity_id', 'media', 'version']);
  t.equal(raw.version, 2);
  const media = raw.media as Record<string, Record<string, unknown>>;
  t.same(
    Object.keys(media).sort(),
    MEDIA.slice(0, 3)
      .map((m) => `mxc://${m.origin}/${m.mediaId}`)
      .sort(),
  );
  const evil = media['mxc://example.org/evil']!;
  t.same(Object.keys(evil).sort(), [
    'content_type',
    'created_ts',
    'file_name',
    'media_id',
    'name',
    'origin',
    's3_url',
    'sha256',
    'size_bytes',
    'uploader',
  ]);
  t.same(evil, {
    name: MEDIA[2]!.uploadName,
    file_name: 'example.org__evil',
    size_bytes: 10,
    content_type: 'text/plain"><b>',
    s3_url: '',
    sha256: sha(MEDIA[2]!.body),
    origin: 'example.org',
    media_id: 'evil',
    created_ts: 1_700_000_000_000,
    uploader: '@alice:example.org',
  });
  t.equal(media['mxc://example.org/empty']!.name, '', 'no upload name is "" as MMR writes it');
  t.doesNotThrow(() => parseManifest(entries.get('manifest.json')!.toString('utf8')), 'our parser accepts it');
});

t.test('index.html lists every file, escaped', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each(MEDIA.slice(0, 4).map(item)), {
    entityId: '@a<b>:example.org',
    targetBytesPerPart: 1 << 20,
    sink: new DirPartSink(dir),
  });
  const html = (await entriesOf(join(dir, res.parts[res.parts.length - 1]!.fileName)))
    .get('index.html')!
    .toString('utf8');
  t.match(html, /^<!DOCTYPE html>/);
  t.notMatch(html, /<script>/, 'no raw script tag from an upload name');
  t.notMatch(html, /<b>/, 'no raw tag from a content type or the entity');
  t.match(html, /&#60;script&#62;alert\(&#34;x&#34;\)&#60;\/script&#62;&#38;&#39;\.txt/);
  t.match(html, /@a&#60;b&#62;:example\.org media export/);
  t.match(html, /href="\.\/localhost%3A8448__m00"/, 'a host:port name is not read as a URL scheme');
  t.match(html, /&lt;no name&gt;/);
  t.match(html, /mxc:\/\/example\.org\/empty/);
});

t.test('system tar lists and extracts what we write', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each(MEDIA.slice(0, 3).map(item)), {
    entityId: 'x',
    targetBytesPerPart: 1 << 20,
    sink: new DirPartSink(dir),
  });
  const part = join(dir, res.parts[0]!.fileName);
  const listing = execFileSync('tar', ['-tzf', part]).toString().trim().split('\n');
  t.same(listing, ['example.org__empty', `example.org__${LONG_ID}.png`, 'example.org__evil']);
  const x = join(dir, 'x');
  execFileSync('mkdir', [x]);
  execFileSync('tar', ['-xzf', part, '-C', x]);
  t.ok(
    (await readFile(join(x, `example.org__${LONG_ID}.png`))).equals(MEDIA[1]!.body),
    'long-named file extracts byte-identical',
  );
  const m = execFileSync('tar', ['-tzf', join(dir, MANIFEST_PART_NAME)])
    .toString()
    .trim()
    .split('\n');
  t.same(m, ['manifest.json', 'index.html']);
});

t.test('the tar writer keeps long names with slashes (ustar prefix) and very long ones (pax)', async (t) => {
  const dir = await tempDir(t);
  const names = [`${'d'.repeat(120)}/${'f'.repeat(90)}`, `${'é'.repeat(200)}.bin`, 'short'];
  const sp = new PartSplitter(new DirPartSink(dir), 1 << 30);
  for (const n of names)
    await sp.add({ name: n, size: 3, mtimeMs: 0, open: () => Readable.from([Buffer.from('abc')]) });
  await sp.flush();
  const file = join(dir, 'export-part-1.tgz');
  t.same([...(await entriesOf(file)).keys()], names, 'our reader');
  t.same(execFileSync('tar', ['-tzf', file]).toString('utf8').trim().split('\n'), names, 'system tar');
});

t.test('an item whose blob cannot be opened is skipped; the rest is exported', async (t) => {
  const dir = await tempDir(t);
  const bad: ExportItem = { ...item(MEDIA[3]!), open: () => createReadStream(join(dir, 'nope')) };
  const events: string[] = [];
  const res = await writeExport(each([item(MEDIA[2]!), bad, item(MEDIA[4]!)]), {
    entityId: 'x',
    targetBytesPerPart: 1 << 20,
    sink: new DirPartSink(dir),
    onEvent: (e) => events.push(e.kind),
  });
  t.equal(res.media, 2);
  t.equal(res.skipped, 1);
  t.same(events, ['written', 'skipped', 'written']);
  const reader = await ArchiveReader.open(
    res.parts.map((p) => ({ name: p.fileName, open: () => createReadStream(join(dir, p.fileName)) })),
  );
  t.same(Object.keys(reader.manifest.media).sort(), ['mxc://example.org/evil', 'mxc://localhost:8448/m01']);
});

t.test('a blob shorter than its row fails the export and leaves no part behind', async (t) => {
  const dir = await tempDir(t);
  const short: ExportItem = { ...item(MEDIA[3]!), sizeBytes: MEDIA[3]!.body.length + 5 };
  await t.rejects(
    writeExport(each([item(MEDIA[2]!), short]), {
      entityId: 'x',
      targetBytesPerPart: 1 << 20,
      sink: new DirPartSink(dir),
    }),
    /source ended after 1000 of 1005 bytes/,
  );
  t.same(await readdir(dir), [], 'the partial part was removed');
});

t.test('an export of nothing is one manifest part', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each<ExportItem>([]), {
    entityId: '@nobody:example.org',
    targetBytesPerPart: 100,
    sink: new DirPartSink(dir),
  });
  t.same(
    res.parts.map((p) => p.fileName),
    [MANIFEST_PART_NAME],
  );
  const reader = await ArchiveReader.open([{ name: 'm', open: () => createReadStream(join(dir, MANIFEST_PART_NAME)) }]);
  t.same(reader.manifest.media, {});
});

t.test('archives written by system tar (GNU and pax long names, "./" entries) are read', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  const long = 'n'.repeat(180);
  execFileSync('mkdir', ['-p', join(src, 'sub')]);
  await writeFile(join(src, 'sub', long), 'long one');
  await writeFile(join(src, 'plain'), 'plain one');
  for (const format of ['gnu', 'pax', 'ustar']) {
    const file = join(dir, `${format}.tgz`);
    const r = await runTar(['--format', format, '-czf', file, '-C', src, '.']);
    if (format === 'ustar') {
      // ustar cannot hold a 180-byte file name: tar itself refuses (so nothing to read).
      t.not(r, 0, 'ustar refuses the long name');
      continue;
    }
    const names = [...(await entriesOf(file)).entries()].map(([n, b]) => `${n}=${b.toString()}`).sort();
    t.same(names, ['plain=plain one', `sub/${long}=long one`], format);
  }
});

t.test('an export extracted and repacked with system tar still imports', async (t) => {
  const dir = await tempDir(t);
  const res = await writeExport(each(MEDIA.map(item)), {
    entityId: 'x',
    targetBytesPerPart: 4096,
    sink: new DirPartSink(dir),
  });
  const x = join(dir, 'x');
  execFileSync('mkdir', [x]);
  for (const p of res.parts) execFileSync('tar', ['-xzf', join(dir, p.fileName), '-C', x]);
  execFileSync('tar', ['-czf', join(dir, 'all.tgz'), '-C', x, '.']);
  const reader = await ArchiveReader.open([{ name: 'all.tgz', open: () => createReadStream(join(dir, 'all.tgz')) }]);
  let n = 0;
  for await (const it of reader.items()) {
    for await (const _ of it.open() as AsyncIterable<Buffer>) void _;
    n++;
  }
  t.equal(n, MEDIA.length, 'every entry found and verified');
});

function runTar(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn('tar', args, { stdio: 'ignore' });
    c.on('close', (code) => resolve(code ?? 1));
  });
}
