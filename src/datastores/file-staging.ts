import type { FinishedStaging, StagingWriter } from './datastore.js';
import type { SinkSession, UploadSinkPool } from '../pools/upload-sink.js';

// A staging file written and hashed by the upload sink pool (off the event loop). The
// datastore renames it into place on commit; abort removes it.
export class FileStagingWriter implements StagingWriter {
  private state: 'open' | 'finished' | 'aborted' = 'open';
  private result: FinishedStaging | null = null;

  private constructor(
    readonly path: string,
    private readonly session: SinkSession,
    private readonly pool: UploadSinkPool,
    /** The file datastore's root, where prestaged links go; none for an S3 store's spool file. */
    private readonly root: string | undefined,
  ) {}

  static async create(path: string, pool: UploadSinkPool, root?: string): Promise<FileStagingWriter> {
    return new FileStagingWriter(path, await pool.open(path), pool, root);
  }

  get bytesWritten(): number {
    return this.session.bytesWritten;
  }

  write(chunk: Buffer): boolean {
    return this.session.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.session.onDrain(cb);
  }

  /** The whole of a local file, read and hashed on the sink worker: no bytes on this thread. */
  appendFile(source: string): Promise<void> {
    return this.pool.append(this.session, source);
  }

  async finish(opts?: { durable?: boolean; prestage?: boolean }): Promise<FinishedStaging> {
    if (this.result) return this.result;
    const durable = opts?.durable !== false;
    const r = await this.pool.finish(this.session, durable, opts?.prestage && this.root ? this.root : undefined);
    this.result = { sha256: r.sha256, size: r.size, ...(r.linked ? { prestaged: r.linked } : {}) };
    this.state = 'finished';
    return this.result;
  }

  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    this.state = 'aborted';
    await this.pool.abort(this.session);
  }
}
