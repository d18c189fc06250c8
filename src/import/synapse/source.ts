import type { Db } from '../../db/driver.js';
import { num } from '../../db/driver.js';

// Reads Synapse's two media tables in keyset order, one batch at a time (never a whole table
// in memory). This is SQL against Synapse's database, not ours, so it lives beside the
// importer rather than in src/db. Columns that older Synapse versions lack are probed once
// and read as their default: safe_from_quarantine (absent before ~1.17), authenticated
// (schema delta 86, MSC3916), sha256 (delta 91).
//
//   local_media_repository: media_id (unique), media_type, media_length (NULL while an
//     MSC2246 upload is still pending), created_ts, upload_name, user_id, quarantined_by,
//     url_cache (non-NULL for URL-preview downloads), safe_from_quarantine, authenticated, sha256
//   remote_media_cache: (media_origin, media_id) unique, media_type, created_ts, upload_name,
//     media_length, filesystem_id (names the file on disk), quarantined_by, authenticated, sha256

export interface SynapseLocalRow {
  mediaId: string;
  mediaType: string | null;
  mediaLength: number | null;
  createdTs: number;
  uploadName: string | null;
  userId: string | null;
  quarantinedBy: string | null;
  urlCache: string | null;
  safeFromQuarantine: boolean;
  authenticated: boolean;
  sha256: string | null;
}

export interface SynapseRemoteRow {
  origin: string;
  mediaId: string;
  mediaType: string | null;
  mediaLength: number | null;
  createdTs: number;
  uploadName: string | null;
  filesystemId: string | null;
  quarantinedBy: string | null;
  authenticated: boolean;
  sha256: string | null;
}

const OPTIONAL: Record<string, string> = {
  safe_from_quarantine: 'false',
  authenticated: 'false',
  sha256: 'NULL',
  url_cache: 'NULL',
  quarantined_by: 'NULL',
};

export class SynapseSource {
  private constructor(
    private readonly db: Db,
    private readonly localCols: string,
    private readonly remoteCols: string,
  ) {}

  /** Checks that `db` looks like Synapse's main database and learns its column set. */
  static async open(db: Db): Promise<SynapseSource> {
    const local = await columnsOf(db, 'local_media_repository');
    const remote = await columnsOf(db, 'remote_media_cache');
    if (!local.has('media_id') || !remote.has('filesystem_id'))
      throw new Error(
        'the database has no local_media_repository / remote_media_cache tables: is it Synapse’s main database?',
      );
    const pick = (have: Set<string>, wanted: string[]) =>
      wanted.map((c) => (have.has(c) ? c : `${OPTIONAL[c] ?? 'NULL'} AS ${c}`)).join(', ');
    return new SynapseSource(
      db,
      pick(local, [
        'media_id',
        'media_type',
        'media_length',
        'created_ts',
        'upload_name',
        'user_id',
        'quarantined_by',
        'url_cache',
        'safe_from_quarantine',
        'authenticated',
        'sha256',
      ]),
      pick(remote, [
        'media_origin',
        'media_id',
        'media_type',
        'media_length',
        'created_ts',
        'upload_name',
        'filesystem_id',
        'quarantined_by',
        'authenticated',
        'sha256',
      ]),
    );
  }

  async countLocal(): Promise<number> {
    const r = await this.db.query('SELECT count(*) AS n FROM local_media_repository');
    return num(r.rows[0]!.n);
  }

  async countRemote(): Promise<number> {
    const r = await this.db.query('SELECT count(*) AS n FROM remote_media_cache');
    return num(r.rows[0]!.n);
  }

  /** Up to `limit` local rows with media_id after `after` ('' for the first batch). */
  async localBatch(after: string, limit: number): Promise<SynapseLocalRow[]> {
    const r = await this.db.query<Record<string, unknown>>(
      `SELECT ${this.localCols} FROM local_media_repository WHERE media_id > $1 ORDER BY media_id LIMIT $2`,
      [after, limit],
    );
    return r.rows.map((x) => ({
      mediaId: x.media_id as string,
      mediaType: str(x.media_type),
      mediaLength: x.media_length === null || x.media_length === undefined ? null : num(x.media_length),
      createdTs: num(x.created_ts ?? 0),
      uploadName: str(x.upload_name),
      userId: str(x.user_id),
      quarantinedBy: str(x.quarantined_by),
      urlCache: str(x.url_cache),
      safeFromQuarantine: Boolean(x.safe_from_quarantine),
      authenticated: Boolean(x.authenticated),
      sha256: str(x.sha256),
    }));
  }

  /** Up to `limit` remote rows after (origin, mediaId) in (media_origin, media_id) order. */
  async remoteBatch(after: { origin: string; mediaId: string }, limit: number): Promise<SynapseRemoteRow[]> {
    const r = await this.db.query<Record<string, unknown>>(
      `SELECT ${this.remoteCols} FROM remote_media_cache WHERE (media_origin, media_id) > ($1, $2)
       ORDER BY media_origin, media_id LIMIT $3`,
      [after.origin, after.mediaId, limit],
    );
    return r.rows.map((x) => ({
      origin: x.media_origin as string,
      mediaId: x.media_id as string,
      mediaType: str(x.media_type),
      mediaLength: x.media_length === null || x.media_length === undefined ? null : num(x.media_length),
      createdTs: num(x.created_ts ?? 0),
      uploadName: str(x.upload_name),
      filesystemId: str(x.filesystem_id),
      quarantinedBy: str(x.quarantined_by),
      authenticated: Boolean(x.authenticated),
      sha256: str(x.sha256),
    }));
  }
}

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

async function columnsOf(db: Db, table: string): Promise<Set<string>> {
  const r = await db.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
     WHERE table_name = $1 AND table_schema = ANY (current_schemas(false))`,
    [table],
  );
  return new Set(r.rows.map((x) => x.column_name));
}
