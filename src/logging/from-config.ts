import type { Config } from '../config/schema.js';
import { DailyFileSink } from './daily-file.js';
import { createLogger, type Logger } from './logger.js';

/** The process logger from repo.*: level, text or JSON (coloured levels with logColors), stdout plus a daily file unless logDirectory is "-". */
export function loggerFromConfig(g: Config, opts: { sink?: (line: string) => void } = {}): Logger {
  const dir = g.repo.logDirectory;
  return createLogger({
    level: g.repo.logLevel,
    json: g.repo.jsonLogs,
    colors: g.repo.logColors,
    ...(opts.sink ? { sink: opts.sink } : {}),
    file: dir && dir !== '-' ? new DailyFileSink({ directory: dir }) : null,
  });
}
