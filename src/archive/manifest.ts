import { checkEntryName } from './entry-name.js';

// manifest.json of MMR's archive v2, field for field as MMR writes it (archival/v2archive),
// so an archive from either project imports into the other; version 1 manifests (older MMR)
// are read too, upgraded to version 2 on parsing. `name` is the uploaded file name,
// `file_name` the entry in the tar; `uploader` is '' for remote media MMR knew no uploader of.

export const MANIFEST_NAME = 'manifest.json';
export const INDEX_NAME = 'index.html';

export interface ManifestRecord {
  name: string;
  file_name: string;
  size_bytes: number;
  content_type: string;
  s3_url: string;
  sha256: string;
  origin: string;
  media_id: string;
  created_ts: number;
  uploader: string;
}

export interface Manifest {
  version: 2;
  entity_id: string;
  created_ts: number;
  media: Record<string, ManifestRecord>;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

export function mxcOf(origin: string, mediaId: string): string {
  return `mxc://${origin}/${mediaId}`;
}

const STRING_FIELDS = [
  'name',
  'file_name',
  'content_type',
  's3_url',
  'sha256',
  'origin',
  'media_id',
  'uploader',
] as const;
const INT_FIELDS = ['size_bytes', 'created_ts'] as const;
const RECORD_FIELDS = new Set<string>([...STRING_FIELDS, ...INT_FIELDS]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * A version 1 record (MMR before v1.3, user exports only) with what it may lack filled in as
 * MMR's own reader does (Go's zero values), and its origin and media ID taken from its key.
 */
function upgradeV1Record(key: string, v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...v };
  for (const f of STRING_FIELDS) if (out[f] === undefined) out[f] = '';
  for (const f of INT_FIELDS) if (out[f] === undefined) out[f] = 0;
  const m = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(key);
  if (m && out.origin === '') out.origin = m[1];
  if (m && out.media_id === '') out.media_id = m[2];
  return out;
}

/** Validates one record; returns it typed or throws naming the mxc key and the field. */
function parseRecord(key: string, v: unknown, version: 1 | 2): ManifestRecord {
  const bad = (msg: string) => new ManifestError(`manifest.json: media ${JSON.stringify(key)}: ${msg}`);
  if (!isObject(v)) throw bad('expected an object');
  if (version === 1) v = upgradeV1Record(key, v);
  if (!isObject(v)) throw bad('expected an object');
  for (const f of STRING_FIELDS)
    if (typeof v[f] !== 'string') throw bad(`${f}: expected a string, got ${JSON.stringify(v[f]) ?? 'nothing'}`);
  for (const f of INT_FIELDS)
    if (!isCount(v[f])) throw bad(`${f}: expected an integer >= 0, got ${JSON.stringify(v[f]) ?? 'nothing'}`);
  const r = v as unknown as ManifestRecord;
  if (!/^[0-9a-f]{64}$/.test(r.sha256))
    throw bad(`sha256: expected 64 lowercase hex digits, got ${JSON.stringify(r.sha256)}`);
  if (r.origin === '' || /[/\s]/.test(r.origin)) throw bad(`origin: not a server name: ${JSON.stringify(r.origin)}`);
  if (r.media_id === '' || /[/\s]/.test(r.media_id))
    throw bad(`media_id: not a media ID: ${JSON.stringify(r.media_id)}`);
  if (key !== mxcOf(r.origin, r.media_id))
    throw bad(`key does not match origin ${JSON.stringify(r.origin)} and media_id ${JSON.stringify(r.media_id)}`);
  const nameProblem = checkEntryName(r.file_name);
  if (nameProblem) throw bad(`file_name: ${nameProblem}`);
  if (r.file_name === MANIFEST_NAME || r.file_name === INDEX_NAME) throw bad(`file_name: ${r.file_name} is reserved`);
  // Unknown extra fields are dropped: a later MMR may add some, and we never echo them.
  const out = {} as Record<string, unknown>;
  for (const f of RECORD_FIELDS) out[f] = v[f];
  return out as unknown as ManifestRecord;
}

/** Parses and validates manifest.json; throws a ManifestError (one line) on anything off. */
export function parseManifest(text: string): Manifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`manifest.json: not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw new ManifestError('manifest.json: expected an object');
  if (v.version !== 1 && v.version !== 2)
    throw new ManifestError(`manifest.json: unsupported version ${JSON.stringify(v.version)} (1 and 2 are read)`);
  const version = v.version;
  // Version 1 named the exported user `user_id`; it is read as version 2 (as MMR does).
  const entityId = version === 1 && (v.entity_id === undefined || v.entity_id === '') ? v.user_id : v.entity_id;
  if (typeof entityId !== 'string' || entityId === '')
    throw new ManifestError(
      `manifest.json: ${version === 1 ? 'user_id (version 1)' : 'entity_id'}: expected a non-empty string`,
    );
  const createdTs = version === 1 && v.created_ts === undefined ? 0 : v.created_ts;
  if (!isCount(createdTs)) throw new ManifestError('manifest.json: created_ts: expected an integer >= 0');
  if (!isObject(v.media)) throw new ManifestError('manifest.json: media: expected an object');
  const media: Record<string, ManifestRecord> = Object.create(null) as Record<string, ManifestRecord>;
  const fileNames = new Set<string>();
  for (const [key, rec] of Object.entries(v.media)) {
    const r = parseRecord(key, rec, version);
    if (fileNames.has(r.file_name))
      throw new ManifestError(
        `manifest.json: media ${JSON.stringify(key)}: file_name ${JSON.stringify(r.file_name)} is listed twice`,
      );
    fileNames.add(r.file_name);
    media[key] = r;
  }
  return { version: 2, entity_id: entityId, created_ts: createdTs, media };
}

/** One media item as an export knows it (a row plus what the archive recorded). */
export interface ManifestInput {
  origin: string;
  mediaId: string;
  fileName: string;
  uploadName: string | null;
  contentType: string | null;
  sizeBytes: number;
  sha256: string;
  s3Url: string | null;
  creationTs: number;
  uploader: string;
}

export function manifestRecord(m: ManifestInput): ManifestRecord {
  return {
    name: m.uploadName ?? '',
    file_name: m.fileName,
    size_bytes: m.sizeBytes,
    content_type: m.contentType ?? '',
    s3_url: m.s3Url ?? '',
    sha256: m.sha256,
    origin: m.origin,
    media_id: m.mediaId,
    created_ts: m.creationTs,
    uploader: m.uploader,
  };
}

/**
 * The manifest as three pieces, so an export can spool the (possibly huge) media map to disk
 * and still emit one JSON document: head + records joined by commas + tail.
 */
export function manifestHead(entityId: string, createdTs: number): string {
  return `{"version":2,"entity_id":${JSON.stringify(entityId)},"created_ts":${createdTs},"media":{`;
}
export function manifestEntry(r: ManifestRecord): string {
  return `${JSON.stringify(mxcOf(r.origin, r.media_id))}:${JSON.stringify(r)}`;
}
export const MANIFEST_TAIL = '}}';

/** The whole manifest in memory (tests, small exports). */
export function buildManifest(entityId: string, createdTs: number, records: ManifestRecord[]): Manifest {
  const media: Record<string, ManifestRecord> = {};
  for (const r of records) media[mxcOf(r.origin, r.media_id)] = r;
  return { version: 2, entity_id: entityId, created_ts: createdTs, media };
}
