import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ERROR_CODES,
  Errors,
  INTERNAL_CODES,
  MatrixError,
  MediaRepoError,
  hasCode,
  imageFailure,
  isPeerUnrecognized,
  previewFailure,
  rejectsToken,
  remoteFetchFailure,
  storedError,
  type ErrorCode,
} from '../src/errors.js';
import { OutboundError, type OutboundKind } from '../src/net/safe-request.js';
import { ConfigError } from '../src/config/validate.js';
import { LostClaimError } from '../src/tasks/runner.js';
import { MultipartError } from '../src/matrix/multipart.js';
import { S3OperationError } from '../src/datastores/s3/bucket.js';

// One error family: wire errors are built, and errcodes compared, in src/errors.ts only, so
// what a failure means to a client is decided in one place.

const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourceFiles(join(dir, d.name)) : /\.c?ts$/.test(d.name) ? [join(dir, d.name)] : [],
  );
}

const FORBIDDEN: ReadonlyArray<[what: string, pattern: RegExp]> = [
  ['builds a MatrixError', /new MatrixError\(/],
  // errcode ===, !==, ==, != (also as x.errcode); `typeof x.errcode === 'string'` checks a
  // peer's JSON and compares no errcode.
  ['compares an errcode', /(?<!typeof\s+[\w.?]*)\berrcode\s*[!=]==?/],
  ['names an errcode', /['"]M_[A-Z_]+['"]/],
];

t.test('no file under src/ but errors.ts builds a MatrixError or matches an errcode', async (t) => {
  const offenders: string[] = [];
  for (const file of sourceFiles(srcDir)) {
    const name = relative(srcDir, file);
    if (name === 'errors.ts') continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const [what, pattern] of FORBIDDEN) {
          if (pattern.test(line)) offenders.push(`src/${name}:${i + 1} ${what}: ${line.trim()}`);
        }
      });
  }
  t.same(offenders, [], 'offenders listed by file and line');
});

t.test('the family classes carry their codes and keep their names', async (t) => {
  const outbound = new OutboundError('too_many_redirects', 'x');
  t.equal(outbound.kind, 'too_many_redirects');
  t.equal(outbound.code, 'MR_ERR_OUTBOUND_TOO_MANY_REDIRECTS');
  t.equal(outbound.name, 'OutboundError');
  const s3 = new S3OperationError(
    's1',
    'GetObject',
    'k',
    Object.assign(new Error('gone'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }),
  );
  const cases: Array<[MediaRepoError<string>, string, string]> = [
    [new ConfigError('x'), 'MR_ERR_CONFIG', 'ConfigError'],
    [new LostClaimError(7), 'MR_ERR_LOST_CLAIM', 'Error'],
    [new MultipartError('x'), 'MR_ERR_MULTIPART', 'MultipartError'],
    [s3, 'MR_ERR_S3_OPERATION', 'S3OperationError'],
    [Errors.notFound(), 'MR_ERR_NOT_FOUND', 'MatrixError'],
  ];
  for (const [e, code, name] of cases) {
    t.ok(e instanceof MediaRepoError && e instanceof Error, code);
    t.equal(e.code, code);
    t.equal(e.name, name);
    t.ok(code in INTERNAL_CODES || code in ERROR_CODES, `${code} is listed`);
  }
  t.equal(s3.status, 404);
  t.equal(new LostClaimError(7).message, 'task 7 was taken over by another instance');
  const kinds: OutboundKind[] = [
    'denied_address',
    'dns',
    'connect',
    'timeout',
    'too_large',
    'too_many_redirects',
    'bad_url',
    'tls',
    'http',
  ];
  for (const k of kinds) t.ok(new OutboundError(k, 'x').code in INTERNAL_CODES, k);
});

t.test('hasCode matches wire errors by code only', async (t) => {
  t.ok(hasCode(Errors.thumbnailTooLarge('big'), 'MR_ERR_THUMBNAIL_TOO_LARGE'));
  t.notOk(hasCode(Errors.tooLarge(5), 'MR_ERR_THUMBNAIL_TOO_LARGE'), 'same errcode and status, other code');
  t.notOk(hasCode(new OutboundError('too_large', 'x'), 'MR_ERR_REMOTE_TOO_LARGE'));
  t.notOk(hasCode(null, 'MR_ERR_NOT_FOUND'));
  t.equal(Errors.mediaIdExhausted().body().error, 'Could not allocate a media ID');
  t.same([Errors.mediaIdExhausted().errcode, Errors.mediaIdExhausted().status], ['M_UNKNOWN', 500]);
});

const wire = (e: MatrixError) => [e.errcode, e.status, e.message];

t.test('an outbound failure in a URL preview', async (t) => {
  const of = (k: OutboundKind, msg = 'boom') => wire(previewFailure(new OutboundError(k, msg)));
  t.same(of('denied_address'), ['M_FORBIDDEN', 403, 'This URL may not be previewed']);
  t.same(of('bad_url', 'not http'), ['M_INVALID_PARAM', 400, 'url: not http']);
  t.same(of('timeout'), ['M_UNKNOWN', 504, 'The page did not answer in time']);
  t.same(of('dns'), ['M_UNKNOWN', 502, "The page's host could not be resolved"]);
  t.same(of('connect'), ['M_UNKNOWN', 502, 'The page could not be fetched (connect)']);
  t.same(of('too_many_redirects'), ['M_UNKNOWN', 502, 'The page could not be fetched (too_many_redirects)']);
  t.same(wire(previewFailure(new Error('bug'))), ['M_UNKNOWN', 500, 'The preview could not be generated']);
  const own = Errors.notFound('gone');
  t.equal(previewFailure(own), own, 'a wire error passes as it is');
});

t.test('an outbound failure in a remote-media fetch', async (t) => {
  const of = (e: unknown) => wire(remoteFetchFailure(e, 'peer.example'));
  t.same(of(new OutboundError('too_large', 'x')), [
    'M_TOO_LARGE',
    502,
    'Remote media from peer.example exceeds downloads.maxBytes',
  ]);
  t.same(of(new OutboundError('timeout', 'x')), ['M_UNKNOWN', 502, 'peer.example did not answer in time']);
  t.same(of(new OutboundError('denied_address', 'denied')), [
    'M_UNKNOWN',
    502,
    'Could not fetch from peer.example: denied',
  ]);
  t.same(of(new MultipartError('truncated')), ['M_UNKNOWN', 502, 'Could not fetch from peer.example: truncated']);
  const own = Errors.notFound('Remote media not found');
  t.equal(remoteFetchFailure(own, 'peer.example'), own);
});

t.test('a worker image failure', async (t) => {
  t.same(wire(imageFailure({ code: 'too_large', message: 'm' })), ['M_TOO_LARGE', 413, 'm']);
  t.equal(imageFailure({ code: 'too_large', message: 'm' }).code, 'MR_ERR_THUMBNAIL_TOO_LARGE');
  t.same(wire(imageFailure({ code: 'unsupported', message: 'm' })), ['M_UNKNOWN', 400, 'm']);
  t.same(wire(imageFailure({ code: 'corrupt', message: 'm' })), ['M_UNKNOWN', 400, 'm']);
});

t.test('a stored errcode and status come back as the same wire error', async (t) => {
  for (const [code, w] of Object.entries(ERROR_CODES) as [ErrorCode, { errcode: string; status: number }][]) {
    const back = storedError(w.errcode, w.status, 'stored');
    t.same(wire(back), [w.errcode, w.status, 'stored'], code);
    t.same(back.body(), { errcode: w.errcode, error: 'stored' });
  }
  t.equal(storedError('M_FORBIDDEN', 403, 'x').code, 'MR_ERR_FORBIDDEN', 'the first code of a shared pair');
  t.same(wire(storedError('M_NOT_A_THING', 418, 'odd row')), ['M_UNKNOWN', 500, 'odd row'], 'a pair no code has');
});

t.test("a homeserver's 403 and a peer's errcode", async (t) => {
  const passed = Errors.homeserverForbidden({ errcode: 'M_USER_LOCKED', error: 'locked' });
  t.same(wire(passed), ['M_USER_LOCKED', 403, 'locked']);
  t.same(wire(Errors.homeserverForbidden({})), ['M_FORBIDDEN', 403, 'The homeserver refused this token']);
  t.same(wire(Errors.homeserverForbidden({ errcode: 7, error: null })), [
    'M_FORBIDDEN',
    403,
    'The homeserver refused this token',
  ]);
  t.ok(rejectsToken(Errors.unknownToken(true)));
  t.ok(
    rejectsToken(Errors.homeserverForbidden({ errcode: 'M_UNKNOWN_TOKEN' })),
    "the homeserver's own M_UNKNOWN_TOKEN",
  );
  t.notOk(rejectsToken(Errors.homeserverForbidden({ errcode: 'M_FORBIDDEN' })));
  t.notOk(rejectsToken(Errors.badGateway('down')));
  t.ok(isPeerUnrecognized({ errcode: 'M_UNRECOGNIZED' }));
  t.notOk(isPeerUnrecognized({ errcode: 'M_NOT_FOUND' }));
  t.notOk(isPeerUnrecognized({}));
});
