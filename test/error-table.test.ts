import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, ERROR_TABLE, Errors, MatrixError, type ErrorCode } from '../src/errors.js';

// The README's error table is documentation operators and client authors rely on: every
// errcode/status pair we can send must be listed there, and every factory must be in the table.
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

t.test('every catalogue row appears in the README error table', async (t) => {
  for (const [errcode, status] of ERROR_TABLE) {
    t.match(readme, new RegExp(`\\|\\s*\`${errcode}\`\\s*\\|\\s*${status}\\s*\\|`), `${errcode} ${status}`);
  }
});

t.test('every error factory produces a catalogued errcode and status', async (t) => {
  const pairs = new Set(ERROR_TABLE.map(([c, s]) => `${c} ${s}`));
  for (const [name, make] of Object.entries(Errors)) {
    const err = (make as (...a: unknown[]) => MatrixError)('x', 1000);
    t.ok(err instanceof MatrixError, name);
    t.ok(pairs.has(`${err.errcode} ${err.status}`), `${name} → ${err.errcode} ${err.status} is in ERROR_TABLE`);
    t.same(Object.keys(err.body()).slice(0, 2), ['errcode', 'error'], `${name} body has errcode and error`);
  }
});

t.test('rate limits carry Retry-After (MMR answered 500 here)', async (t) => {
  const e = Errors.limitExceeded('slow down', 2500);
  t.equal(e.status, 429);
  t.equal(e.headers['Retry-After'], '3');
});

t.test('every code has its own README row: errcode, status, code and when as in ERROR_CODES', async (t) => {
  for (const [code, w] of Object.entries(ERROR_CODES)) {
    t.ok(readme.includes(`| \`${w.errcode}\` | ${w.status} | \`${code}\` | ${w.when} |`), code);
  }
  // And no row the table no longer has (a renamed or dropped code).
  const documented = [...readme.matchAll(/^\|\s*`M_[A-Z_]+`\s*\|\s*\d+\s*\|\s*`(MR_ERR_[A-Z_]+)`/gm)].map((m) => m[1]!);
  t.same(
    documented.filter((c) => !(c in ERROR_CODES)),
    [],
    'README rows name only known codes',
  );
  t.equal(new Set(documented).size, documented.length, 'one README row per code');
});

t.test("every factory's code gives its errcode and status", async (t) => {
  for (const [name, make] of Object.entries(Errors)) {
    const err = (make as (...a: unknown[]) => MatrixError)('x', 1000);
    const row = ERROR_CODES[err.code as ErrorCode];
    t.ok(row, `${name} → ${err.code} is in ERROR_CODES`);
    t.same([err.errcode, err.status], [row?.errcode, row?.status], `${name} → ${err.code}`);
  }
});
