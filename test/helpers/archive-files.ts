import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

// Raw tar bytes for hostile-archive tests, written here by hand (not with src/archive's writer)
// so a bug in the writer cannot hide the same bug in the reader.

export interface RawEntry {
  name: string;
  body?: Buffer;
  /** Typeflag: '0' file, '1' hardlink, '2' symlink, '3' char device, '5' dir, 'x' pax. */
  type?: string;
  linkname?: string;
  /** Declared size when it differs from the body (a lie, or a bomb). */
  size?: number;
  /** Write the size in GNU base-256 (how sizes of 8 GiB+ are written). */
  base256?: boolean;
  /** Corrupt the stored checksum. */
  badChecksum?: boolean;
  /** Raw bytes for the 100-byte name field (to smuggle bytes after a NUL). */
  nameField?: Buffer;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'ascii');
}

export function rawHeader(e: RawEntry): Buffer {
  const b = Buffer.alloc(512);
  if (e.nameField) e.nameField.copy(b, 0, 0, 100);
  else b.write(e.name, 0, 100, 'utf8');
  octal(b, 100, 8, 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  const size = e.size ?? e.body?.length ?? 0;
  if (e.base256) {
    b[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  } else octal(b, 124, 12, size);
  octal(b, 136, 12, 1_700_000_000);
  b.write(e.type ?? '0', 156, 1, 'latin1');
  if (e.linkname) b.write(e.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  if (e.badChecksum) sum += 7;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'latin1');
  return b;
}

export function paxBody(records: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let n = Buffer.byteLength(rest) + 1;
    while (String(n).length + Buffer.byteLength(rest) !== n) n++;
    out += `${n}${rest}`;
  }
  return Buffer.from(out, 'utf8');
}

/** A tar stream of the entries; `end: false` leaves out the end-of-archive marker. */
export function rawTar(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(rawHeader(e));
    const body = e.body ?? Buffer.alloc(0);
    parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const rawTgz = (entries: RawEntry[], opts: { end?: boolean } = {}): Buffer => gzipSync(rawTar(entries, opts));

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface FakeMedia {
  origin: string;
  mediaId: string;
  body: Buffer;
  uploader?: string;
  fileName?: string;
}

/** A manifest v2 (as MMR writes it) for the media; `override` changes one record's fields. */
export function manifestFor(
  entity: string,
  media: FakeMedia[],
  override: Record<string, Record<string, unknown>> = {},
): Buffer {
  const m: Record<string, unknown> = {};
  for (const x of media) {
    const mxc = `mxc://${x.origin}/${x.mediaId}`;
    m[mxc] = {
      name: `${x.mediaId}.bin`,
      file_name: x.fileName ?? `${x.origin}__${x.mediaId}`,
      size_bytes: x.body.length,
      content_type: 'application/octet-stream',
      s3_url: '',
      sha256: sha256(x.body),
      origin: x.origin,
      media_id: x.mediaId,
      created_ts: 1_700_000_000_000,
      uploader: x.uploader ?? `@alice:${x.origin}`,
      ...override[mxc],
    };
  }
  return Buffer.from(JSON.stringify({ version: 2, entity_id: entity, created_ts: 1_700_000_000_000, media: m }));
}

/** Tar entries for the media files (named as the default manifest names them). */
export function mediaEntries(media: FakeMedia[]): RawEntry[] {
  return media.map((x) => ({ name: x.fileName ?? `${x.origin}__${x.mediaId}`, body: x.body }));
}
