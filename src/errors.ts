import type { OutboundKind } from './net/safe-request.js';
import type { ImageFailure } from '../workers/protocol.js';

// The one error family. Every error this server raises on purpose is a MediaRepoError with a
// stable code (MR_ERR_*, like undici's UND_ERR_* and fastify's FST_ERR_*), so callers match
// codes, never messages or errcode strings. The wire error a client sees is a MatrixError whose
// errcode and status come from ERROR_CODES below, and only from there: the README's error table
// is checked against it (test/error-table.test.ts). Failures of other kinds (an outbound fetch,
// a worker's image failure) become wire errors through the mapping functions at the end of this
// file, which is the only place that knows what they mean to a client.
//
// Type-only imports above: the modules that define the family's other classes import this one,
// so a runtime import back would be a cycle.

export class MediaRepoError<C extends string = AnyErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

interface WireError {
  readonly errcode: string;
  readonly status: number;
  /** The README's "when" cell, word for word. */
  readonly when: string;
}

/**
 * Every wire error, one row per case. Where cases share an errcode and status, the first row
 * is the one a stored pair maps back to (storedError).
 */
export const ERROR_CODES = {
  MR_ERR_MISSING_TOKEN: {
    errcode: 'M_MISSING_TOKEN',
    status: 401,
    when: 'No access token on an endpoint that needs one',
  },
  MR_ERR_UNKNOWN_TOKEN: {
    errcode: 'M_UNKNOWN_TOKEN',
    status: 401,
    when: 'The homeserver does not recognise the access token',
  },
  MR_ERR_FORBIDDEN: {
    errcode: 'M_FORBIDDEN',
    status: 403,
    when: "Not allowed: async upload into another user's media ID, appservice masquerade, admin-only endpoint, a URL preview of a denied address",
  },
  MR_ERR_HOMESERVER_FORBIDDEN: {
    errcode: 'M_FORBIDDEN',
    status: 403,
    when: 'The homeserver answered whoami with 403; its own errcode and error are passed on (M_FORBIDDEN if it sent none)',
  },
  MR_ERR_GUEST_FORBIDDEN: {
    errcode: 'M_GUEST_ACCESS_FORBIDDEN',
    status: 403,
    when: 'A guest called upload, create, config or preview_url',
  },
  MR_ERR_NOT_FOUND: {
    errcode: 'M_NOT_FOUND',
    status: 404,
    when: 'Unknown media, expired async upload, frozen media on a legacy endpoint, media of another server; a previewed page that is missing or of a type not previewed',
  },
  MR_ERR_UNRECOGNIZED: { errcode: 'M_UNRECOGNIZED', status: 404, when: 'Unknown endpoint under a Matrix prefix' },
  MR_ERR_METHOD_NOT_ALLOWED: { errcode: 'M_UNRECOGNIZED', status: 405, when: 'Known endpoint, wrong method' },
  MR_ERR_USER_LIMIT_EXCEEDED: {
    errcode: 'M_USER_LIMIT_EXCEEDED',
    status: 403,
    when: "Upload over the uploader's quota (uploads.quotas: maxBytes or maxFiles), declared or counted at commit; the body carries info_uri and can_upgrade",
  },
  MR_ERR_CANNOT_OVERWRITE: {
    errcode: 'M_CANNOT_OVERWRITE_MEDIA',
    status: 409,
    when: 'Async upload PUT into a media ID that already has content',
  },
  MR_ERR_UPLOAD_TOO_LARGE: {
    errcode: 'M_TOO_LARGE',
    status: 413,
    when: 'Upload larger than uploads.maxBytes (declared or counted while streaming)',
  },
  MR_ERR_THUMBNAIL_TOO_LARGE: {
    errcode: 'M_TOO_LARGE',
    status: 413,
    when: 'Thumbnail source over thumbnails.maxSourceBytes, maxPixels or maxFrames',
  },
  MR_ERR_UPLOAD_TOO_SMALL: { errcode: 'M_MEDIA_TOO_SMALL', status: 400, when: 'Upload smaller than uploads.minBytes' },
  MR_ERR_INVALID_PARAM: {
    errcode: 'M_INVALID_PARAM',
    status: 400,
    when: 'A malformed parameter: server name, media ID, filename, timeout_ms',
  },
  MR_ERR_MISSING_PARAM: { errcode: 'M_MISSING_PARAM', status: 400, when: 'A required parameter is absent' },
  MR_ERR_LIMIT_EXCEEDED: {
    errcode: 'M_LIMIT_EXCEEDED',
    status: 429,
    when: 'Too many pending async uploads (Retry-After says when one expires); thumbnail or URL-preview queue full (Retry-After: 1)',
  },
  MR_ERR_CANNOT_THUMBNAIL: {
    errcode: 'M_UNKNOWN',
    status: 400,
    when: 'Content that cannot be thumbnailed: a type not in thumbnails.types (as sniffed from the bytes), or a corrupt or truncated image',
  },
  MR_ERR_INTERNAL: {
    errcode: 'M_UNKNOWN',
    status: 500,
    when: 'An internal error; the log line with the request ID says more',
  },
  MR_ERR_MEDIA_ID_EXHAUSTED: {
    errcode: 'M_UNKNOWN',
    status: 500,
    when: 'Every media ID drawn for an upload or create was taken (a broken random source)',
  },
  MR_ERR_BAD_GATEWAY: {
    errcode: 'M_UNKNOWN',
    status: 502,
    when: 'The request Host is not a configured homeserver, or the homeserver answered badly; remote media that could not be fetched; a previewed page that could not be fetched',
  },
  MR_ERR_UNAUTHORIZED: {
    errcode: 'M_UNAUTHORIZED',
    status: 401,
    when: 'Federation request without a valid X-Matrix signature, or addressed to another server',
  },
  MR_ERR_REMOTE_TOO_LARGE: {
    errcode: 'M_TOO_LARGE',
    status: 502,
    when: 'Remote media larger than downloads.maxBytes, or too large to thumbnail',
  },
  MR_ERR_NOT_YET_UPLOADED: {
    errcode: 'M_NOT_YET_UPLOADED',
    status: 504,
    when: 'Async media still pending after timeout_ms',
  },
  MR_ERR_GATEWAY_TIMEOUT: {
    errcode: 'M_UNKNOWN',
    status: 504,
    when: 'The homeserver did not answer within timeouts.clientServerTimeoutSeconds; a previewed page that sent nothing within timeouts.urlPreviewTimeoutSeconds',
  },
  MR_ERR_UNAVAILABLE: {
    errcode: 'M_UNKNOWN',
    status: 503,
    when: 'The server is shutting down, or no datastore accepts the media',
  },
  MR_ERR_DATABASE_TIMEOUT: {
    errcode: 'M_UNKNOWN',
    status: 503,
    when: 'The database did not answer within database.timeouts (connect, query or transaction)',
  },
  MR_ERR_UNSUPPORTED_CODING: {
    errcode: 'M_UNRECOGNIZED',
    status: 501,
    when: 'A request body in a transfer coding other than chunked (gzip, deflate, …): it is not decoded, so it is refused rather than stored encoded',
  },
  MR_ERR_QUARANTINED: {
    errcode: 'M_NOT_FOUND',
    status: 404,
    when: 'Quarantined media, on every download, thumbnail and federation endpoint (unless quarantine.replaceDownloads or replaceThumbnails serves the placeholder image instead)',
  },
  MR_ERR_CONTENT_BLOCKED: {
    errcode: 'M_FORBIDDEN',
    status: 403,
    when: 'An upload of bytes that an admin quarantined: refused and not stored',
  },
} as const satisfies Record<string, WireError>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An outbound request's failure (net/safe-request.ts), one code per OutboundError kind. */
export type OutboundCode = `MR_ERR_OUTBOUND_${Uppercase<OutboundKind>}`;

/** Codes that never reach a client as such; what they mean there is decided below. */
export const INTERNAL_CODES = {
  MR_ERR_OUTBOUND_DENIED_ADDRESS:
    'An outbound request to an address outside urlPreviews.allowedNetworks or inside disallowedNetworks (any hop)',
  MR_ERR_OUTBOUND_DNS: 'An outbound request whose host did not resolve',
  MR_ERR_OUTBOUND_CONNECT: 'An outbound request that could not connect, or whose connection broke',
  MR_ERR_OUTBOUND_TIMEOUT: 'An outbound request past its total deadline',
  MR_ERR_OUTBOUND_TOO_LARGE: 'An outbound answer over its byte cap',
  MR_ERR_OUTBOUND_TOO_MANY_REDIRECTS: 'An outbound request redirected more often than allowed',
  MR_ERR_OUTBOUND_BAD_URL: 'An outbound URL (or redirect target) that is not http(s) or does not parse',
  MR_ERR_OUTBOUND_TLS: 'An outbound TLS handshake that failed (certificate or protocol)',
  MR_ERR_OUTBOUND_HTTP: 'An outbound answer that is not valid HTTP, or not the JSON asked for',
  MR_ERR_CONFIG: 'A config that cannot be read or does not validate; start-up prints it without a stack',
  MR_ERR_LOST_CLAIM: 'A background task taken over by another instance; this instance stops running it',
  MR_ERR_MULTIPART: 'A federation multipart/mixed body that is malformed or truncated',
  MR_ERR_S3_OPERATION: 'An S3 call that failed; the message names the datastore, operation and key',
} as const satisfies Record<OutboundCode, string> & Record<string, string>;

export type InternalCode = keyof typeof INTERNAL_CODES;
export type AnyErrorCode = ErrorCode | InternalCode;

/** The wire error. Its errcode and status are its code's row in ERROR_CODES. */
export class MatrixError extends MediaRepoError<ErrorCode> {
  readonly errcode: string;
  readonly status: number;
  /** Extra JSON keys (soft_logout, retry_after_ms). */
  readonly extra: Record<string, unknown>;
  /** Response headers (Retry-After). */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    more: { extra?: Record<string, unknown>; headers?: Record<string, string>; passedErrcode?: string } = {},
  ) {
    super(code, message);
    this.name = 'MatrixError';
    // passedErrcode: another server's errcode handed on as it was (MR_ERR_HOMESERVER_FORBIDDEN).
    this.errcode = more.passedErrcode ?? ERROR_CODES[code].errcode;
    this.status = ERROR_CODES[code].status;
    this.extra = more.extra ?? {};
    this.headers = more.headers ?? {};
  }

  body(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

/** A MatrixError made again from its code and message on the far side of a thread boundary
 * (src/threads/db-channel.ts): structured clone keeps neither its class nor its fields. */
export function revivedMatrixError(
  code: ErrorCode,
  message: string,
  more: { extra?: Record<string, unknown>; headers?: Record<string, string>; passedErrcode?: string } = {},
): MatrixError {
  return new MatrixError(code, message, more);
}

/** The README's table as rows of errcode, status and when (one per code). */
export const ERROR_TABLE: ReadonlyArray<readonly [errcode: string, status: number, when: string]> = Object.values(
  ERROR_CODES,
).map((w) => [w.errcode, w.status, w.when] as const);

export function hasCode(e: unknown, code: ErrorCode): e is MatrixError {
  return e instanceof MatrixError && e.code === code;
}

export const Errors = {
  missingToken: () => new MatrixError('MR_ERR_MISSING_TOKEN', 'Missing access token'),
  unknownToken: (softLogout = false) =>
    new MatrixError('MR_ERR_UNKNOWN_TOKEN', 'Unrecognised access token', {
      extra: softLogout ? { soft_logout: true } : {},
    }),
  forbidden: (msg: string) => new MatrixError('MR_ERR_FORBIDDEN', msg),
  /** whoami's 403, with the homeserver's own errcode and error where it sent them. */
  homeserverForbidden: (answer: { errcode?: unknown; error?: unknown }) =>
    new MatrixError(
      'MR_ERR_HOMESERVER_FORBIDDEN',
      typeof answer.error === 'string' ? answer.error : 'The homeserver refused this token',
      { passedErrcode: typeof answer.errcode === 'string' ? answer.errcode : undefined },
    ),
  guestForbidden: () => new MatrixError('MR_ERR_GUEST_FORBIDDEN', 'Guests cannot use this endpoint'),
  notFound: (msg = 'Media not found') => new MatrixError('MR_ERR_NOT_FOUND', msg),
  quarantined: () => new MatrixError('MR_ERR_QUARANTINED', 'Media not found'),
  contentBlocked: () => new MatrixError('MR_ERR_CONTENT_BLOCKED', 'This content is not allowed on this server'),
  unrecognized: () => new MatrixError('MR_ERR_UNRECOGNIZED', 'Unrecognized request'),
  methodNotAllowed: () => new MatrixError('MR_ERR_METHOD_NOT_ALLOWED', 'Method not allowed on this endpoint'),
  cannotOverwrite: () => new MatrixError('MR_ERR_CANNOT_OVERWRITE', 'This media ID already has content'),
  tooLarge: (max: number) => new MatrixError('MR_ERR_UPLOAD_TOO_LARGE', `Upload exceeds the maximum of ${max} bytes`),
  /** Spec v1.18 (MSC4335): info_uri is required; can_upgrade only where configured. */
  userLimitExceeded: (msg: string, infoUri: string, canUpgrade: boolean) =>
    new MatrixError('MR_ERR_USER_LIMIT_EXCEEDED', msg, {
      extra: canUpgrade ? { info_uri: infoUri, can_upgrade: true } : { info_uri: infoUri },
    }),
  tooSmall: (min: number) =>
    new MatrixError('MR_ERR_UPLOAD_TOO_SMALL', `Upload is smaller than the minimum of ${min} bytes`),
  invalidParam: (msg: string) => new MatrixError('MR_ERR_INVALID_PARAM', msg),
  missingParam: (msg: string) => new MatrixError('MR_ERR_MISSING_PARAM', msg),
  limitExceeded: (msg: string, retryAfterMs: number) =>
    new MatrixError('MR_ERR_LIMIT_EXCEEDED', msg, {
      extra: { retry_after_ms: retryAfterMs },
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
    }),
  unknown: (msg = 'Internal server error') => new MatrixError('MR_ERR_INTERNAL', msg),
  mediaIdExhausted: () => new MatrixError('MR_ERR_MEDIA_ID_EXHAUSTED', 'Could not allocate a media ID'),
  badGateway: (msg: string) => new MatrixError('MR_ERR_BAD_GATEWAY', msg),
  gatewayTimeout: (msg: string) => new MatrixError('MR_ERR_GATEWAY_TIMEOUT', msg),
  notYetUploaded: () => new MatrixError('MR_ERR_NOT_YET_UPLOADED', 'Media has not been uploaded yet'),
  unavailable: (msg: string) => new MatrixError('MR_ERR_UNAVAILABLE', msg),
  /** A database wait (connect, query, transaction) passed its bound in database.timeouts. */
  databaseTimeout: (what: string, seconds: number) =>
    new MatrixError(
      'MR_ERR_DATABASE_TIMEOUT',
      `The database did not answer in time (${what}, ${seconds} s); try again later`,
    ),
  unauthorized: (msg: string) => new MatrixError('MR_ERR_UNAUTHORIZED', msg),
  remoteTooLarge: (msg: string) => new MatrixError('MR_ERR_REMOTE_TOO_LARGE', msg),
  thumbnailTooLarge: (msg: string) => new MatrixError('MR_ERR_THUMBNAIL_TOO_LARGE', msg),
  cannotThumbnail: (msg: string) => new MatrixError('MR_ERR_CANNOT_THUMBNAIL', msg),
  unsupportedCoding: (coding: string) =>
    new MatrixError(
      'MR_ERR_UNSUPPORTED_CODING',
      `Transfer-Encoding ${JSON.stringify(coding)} is not supported: send the body as is or chunked`,
    ),
} as const;

// ---- What other failures mean to a client, per context ----

const OUTBOUND_PREFIX = 'MR_ERR_OUTBOUND_';

/** The OutboundError kind ('timeout', 'too_large', …) behind `e`, or null when `e` is no outbound failure. */
function outboundKind(e: unknown): OutboundKind | null {
  if (!(e instanceof MediaRepoError) || !(e.code as string).startsWith(OUTBOUND_PREFIX)) return null;
  return (e.code as string).slice(OUTBOUND_PREFIX.length).toLowerCase() as OutboundKind;
}

export function outboundCode(kind: OutboundKind): OutboundCode {
  return `${OUTBOUND_PREFIX}${kind.toUpperCase()}` as OutboundCode;
}

/** A URL preview's failure: the page's address refused, malformed, silent, unknown or unreachable. */
export function previewFailure(e: unknown): MatrixError {
  if (e instanceof MatrixError) return e;
  const kind = outboundKind(e);
  switch (kind) {
    case null:
      return Errors.unknown('The preview could not be generated');
    case 'denied_address':
      return Errors.forbidden('This URL may not be previewed');
    case 'bad_url':
      return Errors.invalidParam(`url: ${(e as Error).message}`);
    case 'timeout':
      return Errors.gatewayTimeout('The page did not answer in time');
    case 'dns':
      return Errors.badGateway("The page's host could not be resolved");
    default:
      return Errors.badGateway(`The page could not be fetched (${kind})`);
  }
}

/** A remote-media fetch's failure: the peer's file too large, else a 502 naming the peer. */
export function remoteFetchFailure(e: unknown, origin: string): MatrixError {
  if (e instanceof MatrixError) return e;
  const kind = outboundKind(e);
  if (kind === 'too_large') return Errors.remoteTooLarge(`Remote media from ${origin} exceeds downloads.maxBytes`);
  if (kind === 'timeout') return Errors.badGateway(`${origin} did not answer in time`);
  return Errors.badGateway(`Could not fetch from ${origin}: ${(e as Error).message}`);
}

/** A thumbnail worker's refusal (spec): 413 M_TOO_LARGE over a limit, else 400 M_UNKNOWN. */
export function imageFailure(f: Pick<ImageFailure, 'code' | 'message'>): MatrixError {
  return f.code === 'too_large' ? Errors.thumbnailTooLarge(f.message) : Errors.cannotThumbnail(f.message);
}

/**
 * A wire error stored as errcode, status and message (url_previews rows) back in the family:
 * the first code with that pair. A pair no code has (a row no version of this table wrote)
 * comes back as an internal error with its message.
 */
export function storedError(errcode: string, status: number, message: string): MatrixError {
  for (const [code, w] of Object.entries(ERROR_CODES) as [ErrorCode, WireError][]) {
    if (w.errcode === errcode && w.status === status) return new MatrixError(code, message);
  }
  return new MatrixError('MR_ERR_INTERNAL', message);
}

/**
 * Whether `e` says the token itself is dead (so it may be remembered as invalid): our own
 * M_UNKNOWN_TOKEN, or a homeserver's M_UNKNOWN_TOKEN handed on with its 403.
 */
export function rejectsToken(e: unknown): e is MatrixError {
  return (
    hasCode(e, 'MR_ERR_UNKNOWN_TOKEN') || (hasCode(e, 'MR_ERR_HOMESERVER_FORBIDDEN') && e.errcode === 'M_UNKNOWN_TOKEN')
  );
}

/** Whether a peer's JSON error answer is M_UNRECOGNIZED: the spec's cue to try the legacy endpoint. */
export function isPeerUnrecognized(answer: { errcode?: unknown }): boolean {
  return answer.errcode === 'M_UNRECOGNIZED';
}
