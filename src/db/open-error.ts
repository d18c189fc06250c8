import { ConfigError } from '../config/validate.js';

// A wrong database.postgres is an operator's mistake made at start-up: it gets one line naming
// the key, the server and the reason (never the DSN itself: it holds the password), instead of
// a driver stack trace. Both drivers are covered: pg raises Node socket errors (code, address,
// port) and server errors (SQLSTATE code); pg-native raises libpq's text only.

/** host:port of a DSN, URL form or libpq key=value form; null when it cannot be read. */
export function dsnTarget(dsn: string): string | null {
  if (/^postgres(ql)?:\/\//i.test(dsn)) {
    try {
      const u = new URL(dsn);
      const socketHost = u.searchParams.get('host');
      const host = decodeURIComponent(u.hostname) || socketHost || 'localhost';
      return `${host}:${u.port || u.searchParams.get('port') || '5432'}`;
    } catch {
      return null;
    }
  }
  const host = /(?:^|\s)host\s*=\s*'?([^\s']+)/.exec(dsn)?.[1];
  const port = /(?:^|\s)port\s*=\s*'?(\d+)/.exec(dsn)?.[1];
  return host || port ? `${host ?? 'localhost'}:${port ?? '5432'}` : null;
}

// libpq's wording for the common socket failures, as the errno names pg would give.
const LIBPQ_ERRNO: [RegExp, string][] = [
  [/Connection refused/i, 'ECONNREFUSED'],
  [/could not translate host name|Name or service not known|nodename nor servname/i, 'ENOTFOUND'],
  [/timeout expired|timed out/i, 'ETIMEDOUT'],
  [/No route to host/i, 'EHOSTUNREACH'],
  [/Network is unreachable/i, 'ENETUNREACH'],
];

/** The reason in a few words: an errno name, or the server's own message. */
export function openFailureReason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err.message === 'string' ? err.message : String(e);
  const code = typeof err.code === 'string' ? err.code : '';
  if (/^E[A-Z]+$/.test(code)) return code;
  for (const [re, name] of LIBPQ_ERRNO) if (re.test(message)) return name;
  // libpq: 'connection to server at "h", port 5432 failed: FATAL:  database "x" does not exist'
  const first = message
    .split('\n')[0]!
    .replace(/^connection to server at [^:]*failed:\s*/i, '')
    .replace(/^FATAL:\s*/, '')
    .trim();
  return code ? `${first}, SQLSTATE ${code}` : first || 'unknown error';
}

export function postgresOpenError(dsn: string, e: unknown): ConfigError {
  const target = dsnTarget(dsn);
  return new ConfigError(
    `database.postgres: could not connect${target ? ` to ${target}` : ''} (${openFailureReason(e)})`,
  );
}
