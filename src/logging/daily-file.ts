import { createWriteStream, mkdirSync, openSync, readdirSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';

// The log file beside stdout (repo.logDirectory): one file per UTC day, media-repo-YYYY-MM-DD.log,
// and files older than `keepDays` removed when a new day starts. Writing to the dated name
// directly means rotation never renames a file another process (logrotate, tail -F) holds.

export const LOG_FILE_PREFIX = 'media-repo-';
const DATED = /^media-repo-(\d{4}-\d{2}-\d{2})\.log$/;
const DAY_MS = 86_400_000;

export interface DailyFileOptions {
  directory: string;
  keepDays?: number;
  /** Milliseconds since the epoch; injected by tests to cross midnight. */
  now?: () => number;
}

export class DailyFileSink {
  private stream: WriteStream | null = null;
  private day = '';
  private readonly keepDays: number;
  private readonly now: () => number;

  constructor(private readonly opts: DailyFileOptions) {
    this.keepDays = opts.keepDays ?? 14;
    this.now = opts.now ?? Date.now;
    mkdirSync(opts.directory, { recursive: true });
  }

  write(line: string): void {
    const day = new Date(this.now()).toISOString().slice(0, 10);
    if (day !== this.day) this.rotate(day);
    this.stream!.write(line + '\n');
  }

  private rotate(day: string): void {
    this.stream?.end();
    this.day = day;
    // Opened synchronously so the file exists before pruning looks at the directory.
    const fd = openSync(join(this.opts.directory, `${LOG_FILE_PREFIX}${day}.log`), 'a');
    this.stream = createWriteStream('', { fd });
    // A log file that cannot be written must not take the server down with it.
    this.stream.on('error', (e) => process.stderr.write(`media-repo: log file: ${e.message}\n`));
    this.prune(day);
  }

  /** Keeps today and the keepDays - 1 days before it. */
  private prune(today: string): void {
    const oldest = Date.parse(today) - (this.keepDays - 1) * DAY_MS;
    for (const name of readdirSync(this.opts.directory)) {
      const m = DATED.exec(name);
      if (m && Date.parse(m[1]!) < oldest) rmSync(join(this.opts.directory, name), { force: true });
    }
  }

  /** Flushes and closes the current file. */
  close(): Promise<void> {
    const s = this.stream;
    this.stream = null;
    this.day = '';
    return new Promise((resolve) => (s ? s.end(resolve) : resolve()));
  }
}
