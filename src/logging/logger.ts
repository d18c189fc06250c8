// Structured logging: one line per event, text or JSON, to stdout. Child loggers carry
// fields (request ID, host) so every line of a request can be correlated.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export interface LoggerOptions {
  level: LogLevel;
  json: boolean;
  /** Where lines go; stdout by default. Tests pass an array collector. */
  sink?: (line: string) => void;
}

type Fields = Record<string, unknown>;

const SECRET_QUERY = /([?&]access_token=)[^&\s]*/g;

/** Tokens must never reach a log file: redact access_token query values in any string field. */
function redact(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(SECRET_QUERY, '$1<redacted>') : value;
}

export class Logger {
  constructor(private readonly opts: LoggerOptions, private readonly fields: Fields = {}) {}

  child(fields: Fields): Logger {
    return new Logger(this.opts, { ...this.fields, ...fields });
  }

  setOptions(opts: Partial<LoggerOptions>): void {
    Object.assign(this.opts, opts);
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] <= LEVELS[this.opts.level];
  }

  error(msg: string, fields?: Fields): void { this.write('error', msg, fields); }
  warn(msg: string, fields?: Fields): void { this.write('warn', msg, fields); }
  info(msg: string, fields?: Fields): void { this.write('info', msg, fields); }
  debug(msg: string, fields?: Fields): void { this.write('debug', msg, fields); }

  private write(level: LogLevel, msg: string, extra?: Fields): void {
    if (!this.enabled(level)) return;
    const all: Fields = { ...this.fields, ...extra };
    for (const k of Object.keys(all)) {
      const v = all[k];
      all[k] = v instanceof Error ? (v.stack ?? v.message) : redact(v);
    }
    const time = new Date().toISOString();
    let line: string;
    if (this.opts.json) {
      line = JSON.stringify({ time, level, msg: redact(msg), ...all });
    } else {
      const kv = Object.entries(all).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`);
      line = `${time} ${level.toUpperCase().padEnd(5)} ${redact(msg)}${kv.length ? ' ' + kv.join(' ') : ''}`;
    }
    (this.opts.sink ?? ((l: string) => process.stdout.write(l + '\n')))(line);
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  return new Logger({ ...opts });
}
