// Headers on every response. CORS so browser clients can call us from any origin; the
// CSP sandbox, nosniff and CORP stop uploaded HTML or SVG from running as our origin.
export const COMMON_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Access-Control-Allow-Origin', '*'],
  ['Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, DELETE, OPTIONS'],
  ['Access-Control-Allow-Headers', 'Origin, X-Requested-With, Content-Type, Accept, Authorization, Date, Range'],
  ['Access-Control-Expose-Headers', 'Content-Disposition, Content-Range, ETag'],
  [
    'Content-Security-Policy',
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
  ],
  ['X-Content-Security-Policy', 'sandbox;'],
  ['X-Content-Type-Options', 'nosniff'],
  ['Cross-Origin-Resource-Policy', 'cross-origin'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Robots-Tag', 'noindex, nofollow, noarchive, noimageindex'],
];

/**
 * The common headers as one writeHeader call: uWS emits `key: value\r\n`, so a value that
 * carries the following lines writes the whole constant block in one native call instead of
 * ten (measured: about 10% of the 1 KiB download path). Only for this constant block; every
 * value from outside goes through safeHeaderValue.
 */
export const COMMON_HEADER_BLOCK: readonly [string, string] = constantBlock(COMMON_HEADERS);

/**
 * The block for our own HTML pages (the GDPR export view) in place of the common one: still
 * sandboxed, with no script and nothing loaded, but `allow-downloads`, because its links are
 * attachments (the parts) and a browser refuses downloads from a document sandboxed without it.
 * Two CSP headers would not do: a browser enforces every policy it is sent.
 */
export const PAGE_HEADER_BLOCK: readonly [string, string] = constantBlock(
  COMMON_HEADERS.map(([k, v]): readonly [string, string] =>
    k === 'Content-Security-Policy'
      ? [
          k,
          "sandbox allow-downloads; default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none';",
        ]
      : k === 'X-Content-Security-Policy'
        ? [k, 'sandbox allow-downloads;']
        : [k, v],
  ),
);

function constantBlock(headers: ReadonlyArray<readonly [string, string]>): readonly [string, string] {
  return [headers[0]![0], [headers[0]![1], ...headers.slice(1).map(([k, v]) => `${k}: ${v}`)].join('\r\n')];
}

/** Several headers as one writeHeader call: `[first name, first value + "\r\n" + "name: value" lines]`. */
export type HeaderBlock = readonly [string, string];

/** Builds a block from headers of any origin: every value goes through safeHeaderValue and
 * names must be tokens, so no value can add a line of its own. */
export function headerBlock(headers: Record<string, string>): HeaderBlock {
  const entries = Object.entries(headers);
  if (entries.length === 0) throw new Error('headerBlock: no headers');
  for (const [k] of entries)
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw new Error(`headerBlock: bad header name ${JSON.stringify(k)}`);
  const [[k0, v0], ...rest] = entries;
  return [k0!, [safeHeaderValue(v0!), ...rest.map(([k, v]) => `${k}: ${safeHeaderValue(v)}`)].join('\r\n')];
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  206: 'Partial Content',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  416: 'Range Not Satisfiable',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
}

/**
 * uWS writes header values verbatim (it does not reject CR/LF: uWebSockets.js#1299), so
 * anything that came from a user or a remote server is checked here, as the last line of
 * defence against response splitting.
 */
export function safeHeaderValue(v: string): string {
  return /[\r\n\0]/.test(v) ? v.replace(/[\r\n\0]/g, '') : v;
}
