// Progress of a long import or export command. On a terminal: one bar redrawn in place on
// stderr (at most every 200 ms). Otherwise (a pipe, systemd, CI): one JSON line per phase
// change and at most one every 5 s, on stdout, so a log keeps a readable trace.

export interface ProgressSink {
  /** Starts a phase; `total` when known (rows, files, bytes). */
  phase(name: string, total?: number): void;
  /** Adds to the current phase's done count. */
  advance(n?: number): void;
  /** A notable event that is not progress (a skipped file, a mismatch): always printed. */
  event(fields: Record<string, unknown>): void;
  /** Ends the output (the final line of the bar). */
  finish(summary: Record<string, unknown>): void;
}

interface Out {
  isTTY?: boolean;
  write(s: string): unknown;
}

export function progressFor(stdout: Out = process.stdout, stderr: Out = process.stderr): ProgressSink {
  return stderr.isTTY ? new BarProgress(stderr, stdout) : new JsonLineProgress(stdout);
}

abstract class BaseProgress implements ProgressSink {
  protected name = '';
  protected total: number | undefined;
  protected done = 0;
  protected last = 0;
  constructor(protected readonly interval: number) {}
  phase(name: string, total?: number): void {
    this.flush(true);
    this.name = name;
    this.total = total;
    this.done = 0;
    this.last = 0;
    this.flush(true);
  }
  advance(n = 1): void {
    this.done += n;
    this.flush(false);
  }
  abstract event(fields: Record<string, unknown>): void;
  abstract finish(summary: Record<string, unknown>): void;
  protected abstract draw(): void;
  protected flush(force: boolean): void {
    if (!this.name) return;
    const now = Date.now();
    if (!force && now - this.last < this.interval) return;
    this.last = now;
    this.draw();
  }
}

export class JsonLineProgress extends BaseProgress {
  constructor(private readonly out: Out) {
    super(5000);
  }
  protected draw(): void {
    const line: Record<string, unknown> = { ts: Date.now(), phase: this.name, done: this.done };
    if (this.total !== undefined) line.total = this.total;
    this.out.write(`${JSON.stringify(line)}\n`);
  }
  event(fields: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify({ ts: Date.now(), ...fields })}\n`);
  }
  finish(summary: Record<string, unknown>): void {
    this.flush(true);
    this.out.write(`${JSON.stringify({ ts: Date.now(), phase: 'done', ...summary })}\n`);
  }
}

class BarProgress extends BaseProgress {
  constructor(
    private readonly err: Out,
    private readonly out: Out,
  ) {
    super(200);
  }
  protected draw(): void {
    const width = 30;
    const t = this.total;
    const frac = t ? Math.min(1, this.done / t) : 0;
    const bar = t ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0)}%` : '';
    this.err.write(`\r\x1b[2K${this.name} ${bar} ${this.done}${t !== undefined ? `/${t}` : ''}`);
  }
  event(fields: Record<string, unknown>): void {
    this.err.write('\r\x1b[2K');
    this.out.write(`${JSON.stringify(fields)}\n`);
    this.flush(true);
  }
  finish(summary: Record<string, unknown>): void {
    this.flush(true);
    this.err.write('\n');
    this.out.write(`${JSON.stringify({ phase: 'done', ...summary })}\n`);
  }
}
