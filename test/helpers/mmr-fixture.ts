// An MMR deployment as media-repo finds it: a Postgres database with MMR's tables (written from
// the schema description in shared/reference/mmr-feature-inventory.md §3, not from MMR's
// files), objects in MMR's file layout (<path>/ab/cd/rest, the row's location "ab/cd/rest")
// and in an S3 bucket (the key is the location), each named by MMR's object IDs.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3_BUCKET, type TestS3 } from './s3.js';

export const MMR_SCHEMA = `
CREATE TABLE gomigrate (id SERIAL PRIMARY KEY, migration_id BIGINT UNIQUE NOT NULL);
CREATE TABLE media (
  origin TEXT NOT NULL, media_id TEXT NOT NULL, upload_name TEXT NOT NULL, content_type TEXT NOT NULL,
  user_id TEXT NOT NULL, sha256_hash TEXT NOT NULL, size_bytes BIGINT NOT NULL, location TEXT NOT NULL,
  creation_ts BIGINT NOT NULL, quarantined BOOL NOT NULL DEFAULT FALSE, datastore_id TEXT NOT NULL);
CREATE UNIQUE INDEX media_index ON media (media_id, origin);
CREATE INDEX media_sha256_hash_index ON media (sha256_hash);
CREATE INDEX media_datastore_location ON media (datastore_id, location);
CREATE TABLE thumbnails (
  origin TEXT NOT NULL, media_id TEXT NOT NULL, width INT NOT NULL, height INT NOT NULL, method TEXT NOT NULL,
  content_type TEXT NOT NULL, size_bytes BIGINT NOT NULL, location TEXT NOT NULL, creation_ts BIGINT NOT NULL,
  animated BOOL NOT NULL DEFAULT FALSE, sha256_hash TEXT NOT NULL, datastore_id TEXT NOT NULL);
CREATE UNIQUE INDEX thumbnails_index ON thumbnails (media_id, origin, width, height, method, animated);
CREATE TABLE restricted_media (origin TEXT NOT NULL, media_id TEXT NOT NULL, condition_type TEXT NOT NULL, condition_value TEXT NOT NULL);
CREATE UNIQUE INDEX restricted_media_index ON restricted_media (origin, media_id);
CREATE TABLE media_attributes (origin TEXT NOT NULL, media_id TEXT NOT NULL, purpose TEXT NOT NULL);
CREATE UNIQUE INDEX media_attributes_index ON media_attributes (media_id, origin);
CREATE TABLE reserved_media (origin TEXT NOT NULL, media_id TEXT NOT NULL, reason TEXT NOT NULL);
CREATE UNIQUE INDEX reserved_media_index ON reserved_media (media_id, origin);
CREATE TABLE expiring_media (origin TEXT NOT NULL, media_id TEXT NOT NULL, user_id TEXT NOT NULL, expires_ts BIGINT NOT NULL);
CREATE UNIQUE INDEX expiring_media_index ON expiring_media (media_id, origin);
CREATE TABLE user_stats (user_id TEXT PRIMARY KEY, uploaded_bytes BIGINT NOT NULL);
CREATE TABLE last_access (sha256_hash TEXT UNIQUE NOT NULL, last_access_ts BIGINT NOT NULL);
`;

export const FILE_DS = 'mmr-files';
export const S3_DS = 'mmr-s3';

/** MMR's object name: a unique ID with its "idv2fmt" suffix. */
const objectName = () => `${randomBytes(12).toString('hex')}idv2fmt`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface MmrObject {
  datastoreId: string;
  location: string;
  bytes: Buffer;
}

export class MmrFixture {
  readonly objects: MmrObject[] = [];
  private readonly s3: S3Client;
  constructor(
    readonly dsn: string,
    readonly filesDir: string,
    readonly bucket: TestS3,
  ) {
    this.s3 = new S3Client({
      endpoint: `http://127.0.0.1:${bucket.port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async sql(text: string, params: unknown[] = []): Promise<pg.QueryResult> {
    const c = new pg.Client({ connectionString: this.dsn });
    await c.connect();
    try {
      return await c.query(text, params);
    } finally {
      await c.end();
    }
  }

  /** Writes bytes as MMR would into one of its datastores; returns the row's location. */
  async putObject(datastoreId: string, bytes: Buffer): Promise<string> {
    const name = objectName();
    let location: string;
    if (datastoreId === S3_DS) {
      location = name;
      await this.s3.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: name, Body: bytes }));
    } else {
      location = `${name.slice(0, 2)}/${name.slice(2, 4)}/${name.slice(4)}`;
      const path = join(this.filesDir, location);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, bytes);
    }
    this.objects.push({ datastoreId, location, bytes });
    return location;
  }

  async addMedia(m: {
    origin: string;
    mediaId: string;
    userId: string;
    bytes: Buffer;
    contentType: string;
    name: string;
    datastoreId?: string;
    /** Reuse this object (MMR's dedup: a second row, the same datastore and location). */
    location?: string;
    quarantined?: boolean;
    creationTs?: number;
  }): Promise<{ location: string }> {
    const ds = m.datastoreId ?? FILE_DS;
    const location = m.location ?? (await this.putObject(ds, m.bytes));
    await this.sql(
      `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes,
         location, creation_ts, quarantined, datastore_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
      [
        m.origin,
        m.mediaId,
        m.name,
        m.contentType,
        m.userId,
        sha(m.bytes),
        m.bytes.length,
        location,
        m.creationTs ?? 1_700_000_000_000,
        m.quarantined ?? false,
        ds,
      ],
    );
    return { location };
  }

  async addThumbnail(t: {
    origin: string;
    mediaId: string;
    width: number;
    height: number;
    method: string;
    bytes: Buffer;
    contentType: string;
  }): Promise<void> {
    const location = await this.putObject(FILE_DS, t.bytes);
    await this.sql(
      `INSERT INTO thumbnails (origin, media_id, width, height, method, content_type, size_bytes, location,
         creation_ts, animated, sha256_hash, datastore_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,FALSE,$10,$11)`,
      [
        t.origin,
        t.mediaId,
        t.width,
        t.height,
        t.method,
        t.contentType,
        t.bytes.length,
        location,
        1_700_000_000_500,
        sha(t.bytes),
        FILE_DS,
      ],
    );
  }

  /** A digest of every MMR table's content: proves the import did not touch them. */
  async tablesDigest(): Promise<string> {
    const h = createHash('sha256');
    for (const t of [
      'media',
      'thumbnails',
      'restricted_media',
      'media_attributes',
      'reserved_media',
      'expiring_media',
      'user_stats',
    ]) {
      const r = await this.sql(`SELECT * FROM public.${t} ORDER BY 1, 2`);
      h.update(`${t}:${JSON.stringify(r.rows)}\n`);
    }
    return h.digest('hex');
  }
}

export { sha as sha256Hex };
