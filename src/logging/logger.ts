import type { DailyFileSink } from './daily-file.js';

// Structured logging: one line per event, text or JSON, to stdout and (repo.logDirectory) a
// daily file. Child loggers carry fields (request ID, host) so every line of a request can be
// correlated.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export interface LoggerOptions {
  level: LogLevel;
  json: boolean;
  /** Where lines go; stdout by default. Tests pass an array collector. */
  sink?: (line: string) => void;
  /** Also written to, when repo.logDirectory names one. */
  file?: DailyFileSink | null;
  /** repo.logColors: colour the level name of text lines on stdout (never in JSON or the file). */
  colors?: boolean;
}

// ANSI colours per level, as logrus's text formatter uses them.
const COLOURS: Record<LogLevel, string> = {
  error: '\x1b[31m',
  warn: '\x1b[33m',
  info: '\x1b[36m',
  debug: '\x1b[37m',
  trace: '\x1b[37m',
};
const RESET = '\x1b[0m';

type Fields = Record<string, unknown>;

// Tokens must never reach a log line. Redaction runs on the finished line, so it also covers
// nested values and the message: access_token query values (in a URL or a bare query string)
// and Bearer credentials (an Authorization header logged by mistake). Fields whose name says
// they hold a credential are blanked before that.
const SECRET_QUERY = /((?:^|[?&;\s"=])access_token=)[^&\s"\\]*/gi;
const BEARER = /(Bearer\s+)[^\s,"\\]+/gi;
const SECRET_FIELD = /^(authorization|access_?token|token|secret|password)$/i;

export function redact(line: string): string {
  return line.replace(SECRET_QUERY, '$1<redacted>').replace(BEARER, '$1<redacted>');
}

export class Logger {
  constructor(
    private readonly opts: LoggerOptions,
    private readonly fields: Fields = {},
  ) {}

  child(fields: Fields): Logger {
    return new Logger(this.opts, { ...this.fields, ...fields });
  }

  setOptions(opts: Partial<LoggerOptions>): void {
    Object.assign(this.opts, opts);
  }

  /** Flushes and closes the log file, if any (shutdown). */
  closeFile(): Promise<void> {
    return this.opts.file?.close() ?? Promise.resolve();
  }

  /** A finished line from another thread's logger: HTTP threads hand theirs to the main thread's,
   * so one writer owns stdout and the log file. */
  relay(line: string): void {
    (this.opts.sink ?? ((l: string) => process.stdout.write(l + '\n')))(line);
    this.opts.file?.write(line);
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] <= LEVELS[this.opts.level];
  }

  error(msg: string, fields?: Fields): void {
    this.write('error', msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.write('warn', msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.write('info', msg, fields);
  }
  debug(msg: string, fields?: Fields): void {
    this.write('debug', msg, fields);
  }

  private write(level: LogLevel, msg: string, extra?: Fields): void {
    if (!this.enabled(level)) return;
    const all: Fields = { ...this.fields, ...extra };
    for (const k of Object.keys(all)) {
      const v = all[k];
      if (SECRET_FIELD.test(k) && v) all[k] = '<redacted>';
      else if (v instanceof Error) all[k] = v.stack ?? v.message;
    }
    const time = new Date().toISOString();
    let line: string;
    let shown: string;
    if (this.opts.json) {
      line = redact(JSON.stringify({ time, level, msg, ...all }));
      shown = line;
    } else {
      const kv = Object.entries(all).map(
        ([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`,
      );
      const name = level.toUpperCase().padEnd(5);
      const rest = redact(` ${msg}${kv.length ? ' ' + kv.join(' ') : ''}`);
      line = `${time} ${name}${rest}`;
      shown = this.opts.colors ? `${time} ${COLOURS[level]}${name}${RESET}${rest}` : line;
    }
    (this.opts.sink ?? ((l: string) => process.stdout.write(l + '\n')))(shown);
    this.opts.file?.write(line);
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  return new Logger({ ...opts });
}
