import pg from 'pg';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createTestDatabase } from './databases.js';

// A synthetic Synapse: its two media tables in a fresh Postgres database (written from the
// shape of Synapse's schema: full_schemas plus the deltas that added safe_from_quarantine,
// authenticated and sha256) and a media_store_path with Synapse's file layout:
//   local_content/aa/bb/rest, remote_content/<origin>/aa/bb/rest (by filesystem_id),
//   url_cache/<date>/<rest> for URL preview downloads.
// `legacy` leaves out the columns older Synapse versions lack, to test column probing.

export interface LocalItem {
  mediaId: string;
  bytes?: Buffer;
  type?: string | null;
  name?: string | null;
  userId?: string;
  quarantinedBy?: string | null;
  safe?: boolean;
  urlCache?: string | null;
  authenticated?: boolean;
  /** The recorded length; the byte count by default, null for a pending upload. */
  length?: number | null;
  createdTs?: number;
  /** Write the row but no file. */
  noFile?: boolean;
  /** Record this sha256 instead of the bytes' own. */
  sha256?: string;
}

export interface RemoteItem {
  origin: string;
  mediaId: string;
  filesystemId: string;
  bytes?: Buffer;
  type?: string | null;
  name?: string | null;
  quarantinedBy?: string | null;
  length?: number | null;
  createdTs?: number;
  noFile?: boolean;
}

export interface SynapseFixture {
  dsn: string;
  /** media_store_path */
  store: string;
  /** A folder outside the store (symlink targets). */
  outside: string;
  addLocal(item: LocalItem): Promise<void>;
  addRemote(item: RemoteItem): Promise<void>;
  /** A file at a path relative to the store (a symlink when `linkTo` is given). */
  placeFile(rel: string, bytes: Buffer | null, linkTo?: string): void;
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  close(): Promise<void>;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function createSynapseFixture(opts: { legacy?: boolean } = {}): Promise<SynapseFixture> {
  const db = await createTestDatabase();
  const client = new pg.Client({ connectionString: db.dsn });
  await client.connect();
  const extra = opts.legacy
    ? ''
    : ', safe_from_quarantine BOOLEAN NOT NULL DEFAULT FALSE, authenticated BOOLEAN NOT NULL DEFAULT FALSE, sha256 TEXT';
  const extraRemote = opts.legacy ? '' : ', authenticated BOOLEAN NOT NULL DEFAULT FALSE, sha256 TEXT';
  await client.query(`
    CREATE TABLE local_media_repository (
      media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT, upload_name TEXT,
      user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT${extra},
      UNIQUE (media_id));
    CREATE TABLE local_media_repository_thumbnails (
      media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_type TEXT,
      thumbnail_method TEXT, thumbnail_length INTEGER);
    CREATE TABLE remote_media_cache (
      media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT,
      media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT${extraRemote},
      UNIQUE (media_origin, media_id));
  `);
  const root = mkdtempSync(join(tmpdir(), 'synapse-fixture-'));
  const store = join(root, 'media_store');
  const outside = join(root, 'outside');
  mkdirSync(join(store, 'local_content'), { recursive: true });
  mkdirSync(join(store, 'remote_content'), { recursive: true });
  mkdirSync(outside);

  const write = (rel: string, bytes: Buffer) => {
    const p = join(store, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, bytes);
  };
  const split = (id: string) => `${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4)}`;

  return {
    dsn: db.dsn,
    store,
    outside,
    async addLocal(i) {
      const bytes = i.bytes ?? Buffer.alloc(0);
      const cols = [
        'media_id',
        'media_type',
        'media_length',
        'created_ts',
        'upload_name',
        'user_id',
        'quarantined_by',
        'url_cache',
      ];
      const vals: unknown[] = [
        i.mediaId,
        i.type === undefined ? 'application/octet-stream' : i.type,
        i.length === undefined ? bytes.length : i.length,
        i.createdTs ?? 1_600_000_000_000,
        i.name === undefined ? null : i.name,
        i.userId ?? '@alice:media.test',
        i.quarantinedBy ?? null,
        i.urlCache ?? null,
      ];
      if (!opts.legacy) {
        cols.push('safe_from_quarantine', 'authenticated', 'sha256');
        vals.push(i.safe ?? false, i.authenticated ?? false, i.sha256 ?? (i.noFile ? null : sha(bytes)));
      }
      await client.query(
        `INSERT INTO local_media_repository (${cols.join(', ')}) VALUES (${cols.map((_, n) => `$${n + 1}`).join(', ')})`,
        vals,
      );
      if (i.noFile) return;
      // URL-preview downloads live under url_cache/, not local_content/.
      if (i.urlCache) write(`url_cache/${i.mediaId.slice(0, 10)}/${i.mediaId.slice(11)}`, bytes);
      else write(`local_content/${split(i.mediaId)}`, bytes);
    },
    async addRemote(i) {
      const bytes = i.bytes ?? Buffer.alloc(0);
      await client.query(
        `INSERT INTO remote_media_cache (media_origin, media_id, media_type, created_ts, upload_name, media_length,
           filesystem_id, quarantined_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          i.origin,
          i.mediaId,
          i.type === undefined ? 'application/octet-stream' : i.type,
          i.createdTs ?? 1_600_000_000_000,
          i.name === undefined ? null : i.name,
          i.length === undefined ? bytes.length : i.length,
          i.filesystemId,
          i.quarantinedBy ?? null,
        ],
      );
      if (!i.noFile) write(`remote_content/${i.origin}/${split(i.filesystemId)}`, bytes);
    },
    placeFile(rel, bytes, linkTo) {
      const p = join(store, rel);
      mkdirSync(dirname(p), { recursive: true });
      if (linkTo) symlinkSync(linkTo, p);
      else writeFileSync(p, bytes ?? Buffer.alloc(0));
    },
    query: (sql, params) => client.query(sql, params),
    async close() {
      await client.end();
      await db.drop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
