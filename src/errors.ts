// The one wire error. Every failure a client can see is a MatrixError built from this
// catalogue, so status, errcode and the README's error table stay in step (a test checks).

export class MatrixError extends Error {
  constructor(
    readonly errcode: string,
    readonly status: number,
    message: string,
    /** Extra JSON keys (soft_logout, retry_after_ms) and headers (Retry-After). */
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'MatrixError';
  }

  body(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

/** Every errcode we send, with its status and when. Kept in sync with README's table. */
export const ERROR_TABLE: ReadonlyArray<readonly [errcode: string, status: number, when: string]> = [
  ['M_MISSING_TOKEN', 401, 'No access token on an endpoint that needs one'],
  ['M_UNKNOWN_TOKEN', 401, 'The homeserver does not recognise the access token'],
  ['M_FORBIDDEN', 403, 'Not allowed: async upload into another user\'s media ID, appservice masquerade, admin-only endpoint, a URL preview of a denied address'],
  ['M_GUEST_ACCESS_FORBIDDEN', 403, 'A guest called upload, create, config or preview_url'],
  ['M_NOT_FOUND', 404, 'Unknown media, expired async upload, frozen media on a legacy endpoint, media of another server; a previewed page that is missing or of a type not previewed'],
  ['M_UNRECOGNIZED', 404, 'Unknown endpoint under a Matrix prefix'],
  ['M_UNRECOGNIZED', 405, 'Known endpoint, wrong method'],
  ['M_CANNOT_OVERWRITE_MEDIA', 409, 'Async upload PUT into a media ID that already has content'],
  ['M_TOO_LARGE', 413, 'Upload larger than uploads.maxBytes (declared or counted while streaming); thumbnail source over thumbnails.maxSourceBytes, maxPixels or maxFrames'],
  ['M_MEDIA_TOO_SMALL', 400, 'Upload smaller than uploads.minBytes'],
  ['M_INVALID_PARAM', 400, 'A malformed parameter: server name, media ID, filename, timeout_ms'],
  ['M_MISSING_PARAM', 400, 'A required parameter is absent'],
  ['M_LIMIT_EXCEEDED', 429, 'Too many pending async uploads (Retry-After says when one expires); thumbnail or URL-preview queue full (Retry-After: 1)'],
  ['M_UNKNOWN', 400, 'Content that cannot be thumbnailed: a type not in thumbnails.types (as sniffed from the bytes), or a corrupt or truncated image'],
  ['M_UNKNOWN', 500, 'An internal error; the log line with the request ID says more'],
  ['M_UNKNOWN', 502, 'The request Host is not a configured homeserver, or the homeserver answered badly; a previewed page that could not be fetched'],
  ['M_UNAUTHORIZED', 401, 'Federation request without a valid X-Matrix signature, or addressed to another server'],
  ['M_TOO_LARGE', 502, 'Remote media larger than downloads.maxBytes, or too large to thumbnail'],
  ['M_NOT_YET_UPLOADED', 504, 'Async media still pending after timeout_ms'],
  ['M_UNKNOWN', 504, 'The homeserver did not answer within timeouts.clientServerTimeoutSeconds; a previewed page that sent nothing within timeouts.urlPreviewTimeoutSeconds'],
  ['M_UNKNOWN', 503, 'The server is shutting down, or the database or datastore is unreachable'],
  ['M_UNRECOGNIZED', 501, 'A request body in a transfer coding other than chunked (gzip, deflate, …): it is not decoded, so it is refused rather than stored encoded'],
];

export const Errors = {
  missingToken: () => new MatrixError('M_MISSING_TOKEN', 401, 'Missing access token'),
  unknownToken: (softLogout = false) =>
    new MatrixError('M_UNKNOWN_TOKEN', 401, 'Unrecognised access token', softLogout ? { soft_logout: true } : {}),
  forbidden: (msg: string) => new MatrixError('M_FORBIDDEN', 403, msg),
  guestForbidden: () => new MatrixError('M_GUEST_ACCESS_FORBIDDEN', 403, 'Guests cannot use this endpoint'),
  notFound: (msg = 'Media not found') => new MatrixError('M_NOT_FOUND', 404, msg),
  unrecognized: () => new MatrixError('M_UNRECOGNIZED', 404, 'Unrecognized request'),
  methodNotAllowed: () => new MatrixError('M_UNRECOGNIZED', 405, 'Method not allowed on this endpoint'),
  cannotOverwrite: () => new MatrixError('M_CANNOT_OVERWRITE_MEDIA', 409, 'This media ID already has content'),
  tooLarge: (max: number) => new MatrixError('M_TOO_LARGE', 413, `Upload exceeds the maximum of ${max} bytes`),
  tooSmall: (min: number) => new MatrixError('M_MEDIA_TOO_SMALL', 400, `Upload is smaller than the minimum of ${min} bytes`),
  invalidParam: (msg: string) => new MatrixError('M_INVALID_PARAM', 400, msg),
  missingParam: (msg: string) => new MatrixError('M_MISSING_PARAM', 400, msg),
  limitExceeded: (msg: string, retryAfterMs: number) =>
    new MatrixError('M_LIMIT_EXCEEDED', 429, msg, { retry_after_ms: retryAfterMs }, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }),
  unknown: (msg = 'Internal server error') => new MatrixError('M_UNKNOWN', 500, msg),
  badGateway: (msg: string) => new MatrixError('M_UNKNOWN', 502, msg),
  gatewayTimeout: (msg: string) => new MatrixError('M_UNKNOWN', 504, msg),
  notYetUploaded: () => new MatrixError('M_NOT_YET_UPLOADED', 504, 'Media has not been uploaded yet'),
  unavailable: (msg: string) => new MatrixError('M_UNKNOWN', 503, msg),
  /** A database wait (connect, query, transaction) passed its bound in database.timeouts. */
  databaseTimeout: (what: string, seconds: number) =>
    new MatrixError('M_UNKNOWN', 503, `The database did not answer in time (${what}, ${seconds} s); try again later`),
  unauthorized: (msg: string) => new MatrixError('M_UNAUTHORIZED', 401, msg),
  remoteTooLarge: (msg: string) => new MatrixError('M_TOO_LARGE', 502, msg),
  thumbnailTooLarge: (msg: string) => new MatrixError('M_TOO_LARGE', 413, msg),
  cannotThumbnail: (msg: string) => new MatrixError('M_UNKNOWN', 400, msg),
  unsupportedCoding: (coding: string) =>
    new MatrixError('M_UNRECOGNIZED', 501, `Transfer-Encoding ${JSON.stringify(coding)} is not supported: send the body as is or chunked`),
} as const;
