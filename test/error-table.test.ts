import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_TABLE, Errors, MatrixError } from '../src/errors.js';

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
