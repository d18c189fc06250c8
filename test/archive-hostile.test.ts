import t, { type Test } from 'tap';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ManifestError, parseManifest } from '../src/archive/manifest.js';
import { ArchiveReader, EntryMismatchError, type ArchivePart } from '../src/archive/read-archive.js';
import { ArchiveFormatError, DEFAULT_TAR_LIMITS, readTarGz } from '../src/archive/tar-reader.js';
import { uploaderProblem } from '../src/archive/import-archive.js';
import {
  manifestFor,
  mediaEntries,
  paxBody,
  rawTar,
  rawTgz,
  sha256,
  type FakeMedia,
  type RawEntry,
} from './helpers/archive-files.js';

// One test per bad input an archive can carry. Every refusal is an ArchiveFormatError (or a
// ManifestError) with one line naming the part and the entry, raised before the entry's bytes
// are read; a wrong hash costs only its own entry.

const MEDIA: FakeMedia[] = [
  { origin: 'example.org', mediaId: 'a', body: Buffer.from('first file') },
  { origin: 'example.org', mediaId: 'b', body: Buffer.from('second file, longer') },
  { origin: 'example.org', mediaId: 'c', body: Buffer.from('third') },
];

const part = (name: string, bytes: Buffer): ArchivePart => ({ name, open: () => Readable.from([bytes]) });

/** A good archive: media entries then manifest.json, optionally with extra raw entries first. */
function archive(
  extra: RawEntry[] = [],
  media = MEDIA,
  override: Record<string, Record<string, unknown>> = {},
): Buffer {
  return rawTgz([
    ...extra,
    ...mediaEntries(media),
    { name: 'manifest.json', body: manifestFor('@alice:example.org', media, override) },
  ]);
}

async function refused(t: Test, bytes: Buffer, pattern: RegExp): Promise<void> {
  const err = await ArchiveReader.open([part('p1.tgz', bytes)]).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, ArchiveFormatError, 'an ArchiveFormatError');
  t.match((err as Error).message, pattern);
  t.match((err as Error).message, /^p1\.tgz: /, 'names the part');
  t.notMatch((err as Error).message, /\n/, 'one line');
}

t.test('the good archive these cases spoil reads cleanly', async (t) => {
  const r = await ArchiveReader.open([part('p1.tgz', archive())]);
  t.equal(Object.keys(r.manifest.media).length, 3);
  let n = 0;
  for await (const it of r.items()) {
    for await (const _ of it.open() as AsyncIterable<Buffer>) void _;
    n++;
  }
  t.equal(n, 3);
});

t.test('truncated tgz', async (t) => {
  const good = archive();
  await refused(t, good.subarray(0, Math.floor(good.length / 2)), /truncated gzip stream/);
  await refused(t, good.subarray(0, good.length - 4), /truncated gzip stream/);
});

t.test('truncated tar inside a whole gzip', async (t) => {
  const tar = rawTar(mediaEntries(MEDIA));
  await refused(
    t,
    gzipSync(tar.subarray(0, 512 + 5)),
    /truncated tar: entry "example\.org__a" ends after 5 of 10 bytes/,
  );
  await refused(t, gzipSync(rawTar(mediaEntries(MEDIA), { end: false })), /no end-of-archive marker/);
});

t.test('corrupt gzip', async (t) => {
  const good = archive();
  const bad = Buffer.from(good);
  for (let i = 20; i < bad.length - 20; i += 7) bad[i] ^= 0x5a;
  await refused(t, bad, /corrupt gzip|bad header checksum/);
  await refused(
    t,
    Buffer.from('this is not gzip at all, just text'),
    /corrupt gzip \(incorrect header check\) before the first entry/,
  );
  const crc = Buffer.from(good);
  crc[crc.length - 6] ^= 0xff; // the CRC32 in the trailer
  await refused(t, crc, /corrupt gzip \(incorrect data check\)/);
});

t.test('bad tar header checksum', async (t) => {
  await refused(t, archive([{ name: 'x', body: Buffer.from('x'), badChecksum: true }]), /bad header checksum/);
});

t.test('a manifest with a wrong hash: that entry is reported, the others still read', async (t) => {
  const wrong = sha256(Buffer.from('something else'));
  const r = await ArchiveReader.open([
    part('p1.tgz', archive([], MEDIA, { 'mxc://example.org/b': { sha256: wrong } })),
  ]);
  const ok: string[] = [];
  const bad: string[] = [];
  for await (const it of r.items()) {
    try {
      const chunks: Buffer[] = [];
      for await (const c of it.open() as AsyncIterable<Buffer>) chunks.push(c);
      t.ok(Buffer.concat(chunks).equals(MEDIA.find((m) => `mxc://${m.origin}/${m.mediaId}` === it.mxc)!.body));
      ok.push(it.mxc);
    } catch (e) {
      t.type(e, EntryMismatchError);
      t.match(
        (e as Error).message,
        new RegExp(
          `mxc://example.org/b: example.org__b hashes to ${sha256(MEDIA[1]!.body)}, the manifest says ${wrong}`,
        ),
      );
      bad.push(it.mxc);
    }
  }
  t.same(ok, ['mxc://example.org/a', 'mxc://example.org/c']);
  t.same(bad, ['mxc://example.org/b']);
});

t.test('a manifest with a wrong size: that entry errors before its end', async (t) => {
  const r = await ArchiveReader.open([
    part('p1.tgz', archive([], MEDIA, { 'mxc://example.org/a': { size_bytes: 3 } })),
  ]);
  const errors: string[] = [];
  for await (const it of r.items()) {
    try {
      for await (const _ of it.open() as AsyncIterable<Buffer>) void _;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  t.same(errors, ['mxc://example.org/a: example.org__a has more than the 3 bytes the manifest says']);
});

t.test('"../" and absolute names', async (t) => {
  await refused(
    t,
    archive([{ name: '../../etc/passwd', body: Buffer.from('x') }]),
    /entry "\.\.\/\.\.\/etc\/passwd": path escapes the archive/,
  );
  await refused(t, archive([{ name: 'a/../../b', body: Buffer.from('x') }]), /path escapes the archive/);
  await refused(t, archive([{ name: '/etc/passwd', body: Buffer.from('x') }]), /entry "\/etc\/passwd": absolute path/);
  const pax = paxBody({ path: '../escape' });
  await refused(
    t,
    archive([
      { name: 'pax', type: 'x', body: pax },
      { name: 'harmless', body: Buffer.from('x') },
    ]),
    /entry "\.\.\/escape": path escapes/,
  );
  await refused(t, archive([{ name: 'C:\\x', body: Buffer.from('x') }]), /backslash in name/);
});

t.test('NUL in a name', async (t) => {
  const field = Buffer.alloc(100);
  field.write('ok.txt\u0000../../evil');
  await refused(
    t,
    archive([{ name: '', nameField: field, body: Buffer.from('x') }]),
    /entry "ok\.txt": name contains NUL/,
  );
  await refused(
    t,
    archive([
      { name: 'p', type: 'x', body: paxBody({ path: 'a\u0000b' }) },
      { name: 'x', body: Buffer.from('x') },
    ]),
    /name contains NUL/,
  );
});

t.test('symlink, hardlink and device entries', async (t) => {
  await refused(
    t,
    archive([{ name: 'link', type: '2', linkname: '/etc/passwd' }]),
    /entry "link" is a symlink to "\/etc\/passwd"; only regular files are allowed/,
  );
  await refused(
    t,
    archive([{ name: 'hard', type: '1', linkname: 'manifest.json' }]),
    /entry "hard" is a hardlink to "manifest\.json"/,
  );
  await refused(t, archive([{ name: 'dev', type: '3' }]), /entry "dev" is a char/);
  await refused(t, archive([{ name: 'fifo', type: '6' }]), /entry "fifo" is a fifo/);
  await refused(t, archive([{ name: 'odd', type: 'Z' }]), /entry "odd" is unknown type "Z"/);
});

t.test('a directory entry that escapes is refused; a plain one is skipped', async (t) => {
  await refused(t, archive([{ name: '../up/', type: '5' }]), /path escapes the archive/);
  await refused(t, archive([{ name: '/', type: '5' }]), /entry "\/": absolute path/);
  const r = await ArchiveReader.open([part('p1.tgz', archive([{ name: 'media/', type: '5' }]))]);
  t.same(r.unlisted, []);
});

t.test('a tar bomb: a header declaring 100 GiB is refused before reading', async (t) => {
  const GiB100 = 100 * 2 ** 30;
  // The file itself is tiny: the refusal comes from the header, not from reading 100 GiB.
  const bomb = rawTgz([{ name: 'bomb', size: GiB100, base256: true }], { end: false });
  t.ok(bomb.length < 1024, `${bomb.length} bytes on disk`);
  await refused(
    t,
    bomb,
    new RegExp(
      `entry "bomb" declares ${GiB100} bytes, over the ${DEFAULT_TAR_LIMITS.maxEntryBytes}-byte cap per entry`,
    ),
  );
  const paxBomb = rawTgz(
    [
      { name: 'p', type: 'x', body: paxBody({ size: String(GiB100) }) },
      { name: 'bomb2', size: 0 },
    ],
    { end: false },
  );
  await refused(t, paxBomb, /entry "bomb2" declares 107374182400 bytes/);
  const before = process.memoryUsage().rss;
  await refused(t, bomb, /declares/);
  t.ok(process.memoryUsage().rss - before < 64 * 2 ** 20, 'no memory blow-up');
});

t.test('caps are configurable, and the total is capped too', async (t) => {
  const limits = { ...DEFAULT_TAR_LIMITS, maxEntryBytes: 15, maxTotalBytes: 25 };
  const tgz = rawTgz(
    mediaEntries(MEDIA.slice(0, 1)).concat(
      { name: 'y', body: Buffer.alloc(12) },
      { name: 'z', body: Buffer.alloc(12) },
    ),
  );
  const names: string[] = [];
  const err = await (async () => {
    for await (const e of readTarGz(Readable.from([tgz]), 'p.tgz', limits)) names.push(e.name);
  })().catch((e: Error) => e);
  t.same(names, ['example.org__a', 'y'], 'entries under the caps were read');
  t.match((err as Error).message, /^p\.tgz: entry "z" brings the archive to 34 bytes, over the 25-byte cap$/);
  const meta = rawTgz([{ name: 'p', type: 'x', body: paxBody({ comment: 'x'.repeat(2 << 20) }) }]);
  await refused(t, meta, /pax header of \d+ bytes is over the 1048576-byte cap/);
});

t.test('duplicate entries, in one part and across parts', async (t) => {
  await refused(
    t,
    archive([{ name: 'example.org__a', body: Buffer.from('first file') }]),
    /duplicate entry "example\.org__a"/,
  );
  await refused(
    t,
    archive([{ name: './example.org__a', body: Buffer.from('first file') }]),
    /duplicate entry "example\.org__a"/,
  );
  const other = rawTgz([{ name: 'example.org__b', body: Buffer.from('x') }]);
  const err = await ArchiveReader.open([part('p1.tgz', archive()), part('p2.tgz', other)]).catch((e: Error) => e);
  t.match((err as Error).message, /^p2\.tgz: entry "example\.org__b" is also in p1\.tgz$/);
});

t.test('no manifest, or an invalid one', async (t) => {
  const err = await ArchiveReader.open([part('p1.tgz', rawTgz(mediaEntries(MEDIA)))]).catch((e: Error) => e);
  t.match((err as Error).message, /no manifest\.json in any of the 1 part\(s\)/);
  const bad = (o: Record<string, unknown>, re: RegExp) => {
    const err = (() => {
      try {
        parseManifest(manifestFor('@a:example.org', MEDIA.slice(0, 1), { 'mxc://example.org/a': o }).toString());
        return null;
      } catch (e) {
        return e;
      }
    })();
    t.type(err, ManifestError);
    t.match((err as Error).message, re);
  };
  bad({ sha256: 'A'.repeat(64) }, /sha256: expected 64 lowercase hex digits/);
  bad({ size_bytes: -1 }, /size_bytes: expected an integer >= 0/);
  bad({ size_bytes: '10' }, /size_bytes: expected an integer >= 0, got "10"/);
  bad({ media_id: 'other' }, /key does not match origin "example\.org" and media_id "other"/);
  bad({ file_name: '../x' }, /file_name: path escapes/);
  bad({ uploader: 5 }, /uploader: expected a string/);
  t.throws(() => parseManifest('{"version":3,"entity_id":"x","created_ts":0,"media":{}}'), /unsupported version 3/);
  t.throws(() => parseManifest('{"version":1,"created_ts":0,"media":{}}'), /user_id \(version 1\): expected/);
  t.throws(() => parseManifest('not json'), /manifest\.json: not JSON/);
  // Through the reader: the manifest error comes out as it is.
  const withBad = archive([], MEDIA, { 'mxc://example.org/c': { sha256: 'nothex' } });
  await t.rejects(
    ArchiveReader.open([part('p1.tgz', withBad)]),
    /manifest\.json: media "mxc:\/\/example\.org\/c": sha256/,
  );
});

t.test('a version 1 manifest (older MMR) is read as version 2', async (t) => {
  const body = Buffer.from('old export');
  const v1 = JSON.stringify({
    version: 1,
    user_id: '@alice:example.org',
    created_ts: 1_500_000_000_000,
    media: {
      // What a v1 record may lack is filled in as MMR's reader does; origin and media ID come from the key.
      'mxc://example.org/old': {
        name: 'a.txt',
        file_name: 'example.org__old.txt',
        size_bytes: body.length,
        sha256: sha256(body),
      },
    },
  });
  const m = parseManifest(v1);
  t.equal(m.version, 2);
  t.equal(m.entity_id, '@alice:example.org');
  t.same(m.media['mxc://example.org/old'], {
    name: 'a.txt',
    file_name: 'example.org__old.txt',
    size_bytes: body.length,
    content_type: '',
    s3_url: '',
    sha256: sha256(body),
    origin: 'example.org',
    media_id: 'old',
    created_ts: 0,
    uploader: '',
  });
  // A whole v1 archive through the reader: its entry is handed out and verifies.
  const r = await ArchiveReader.open([
    part(
      'p1.tgz',
      rawTgz([
        { name: 'example.org__old.txt', body },
        { name: 'manifest.json', body: Buffer.from(v1) },
      ]),
    ),
  ]);
  const got: Buffer[] = [];
  for await (const it of r.items()) for await (const c of it.open() as AsyncIterable<Buffer>) got.push(c);
  t.same(Buffer.concat(got), body);
  // Still strict where it matters: a v1 record with a bad hash is refused like a v2 one.
  t.throws(() => parseManifest(v1.replace(sha256(body), 'f'.repeat(63))), /sha256: expected 64 lowercase hex digits/);
});

t.test('uploaders on another server than the origin are refused (MMR rule)', async (t) => {
  const rec = JSON.parse(manifestFor('x', MEDIA.slice(0, 1)).toString()).media['mxc://example.org/a'];
  t.equal(uploaderProblem(rec), null);
  t.equal(uploaderProblem({ ...rec, uploader: '' }), null, 'no uploader (remote media) is fine');
  t.match(uploaderProblem({ ...rec, uploader: '@mallory:evil.org' }), /not on the media's origin "example\.org"/);
  t.match(uploaderProblem({ ...rec, uploader: 'alice' }), /is not a user ID/);
});

t.test('media the manifest lists but no part holds are reported as missing', async (t) => {
  const tgz = rawTgz([
    ...mediaEntries(MEDIA.slice(0, 2)),
    { name: 'manifest.json', body: manifestFor('x', MEDIA) },
    { name: 'stray', body: Buffer.from('?') },
  ]);
  const r = await ArchiveReader.open([part('p1.tgz', tgz)]);
  t.same(r.missing, ['mxc://example.org/c']);
  t.same(r.unlisted, ['stray']);
});
