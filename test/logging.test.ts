import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/logging/logger.js';
import { DailyFileSink } from '../src/logging/daily-file.js';
import { SERVER_NAME, startTestRepo } from './helpers/repo.js';

// Log lines: credentials never printed (query values, Authorization, token-named fields, in
// text and JSON), a request ID on every line of a request, and the daily file's rotation.

t.test('a request with ?access_token and an Authorization header prints neither secret', async (t) => {
  const repo = await startTestRepo('pglite');
  t.teardown(() => repo.close());
  const from = repo.logs.length;
  const q = 'query-secret-1234';
  const h = 'header-secret-5678';
  // Unknown tokens (401), a missing media (after auth fails, still logged), an unknown Host.
  for (const path of [
    `/_matrix/media/v3/download/${SERVER_NAME}/abc?access_token=${q}`,
    `/_matrix/client/v1/media/config?x=1&access_token=${q}`,
  ]) {
    (await repo.fetch(path, { headers: { Authorization: `Bearer ${h}` } })).body?.cancel();
    (await repo.fetch(path, { headers: { Authorization: `Bearer ${h}` }, host: 'unknown.example' })).body?.cancel();
  }
  const lines = repo.logs.slice(from);
  t.ok(
    lines.some((l) => l.includes('access_token=<redacted>')),
    'the query was logged, redacted',
  );
  t.same(
    lines.filter((l) => l.includes(q) || l.includes(h)),
    [],
    'no line holds a secret',
  );
  const requestLines = lines.filter((l) => / request /.test(l) || l.includes('Host that is not'));
  t.ok(requestLines.length >= 2, 'request lines were logged');
  t.ok(
    requestLines.every((l) => /requestId="REQ-/.test(l)),
    'each carries its request ID',
  );
});

t.test('redaction in JSON and text, nested values and credential fields', async (t) => {
  for (const json of [true, false]) {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', json, sink: (l) => lines.push(l) });
    log.child({ requestId: 'REQ-1' }).info('fetching https://h/x?a=1&access_token=s3cret-a', {
      url: '/p?access_token=s3cret-b',
      authorization: 'Bearer s3cret-c',
      token: 's3cret-d',
      nested: { header: 'Bearer s3cret-e', query: 'access_token=s3cret-f&b=2' },
      error: new Error('upstream said access_token=s3cret-g'),
    });
    t.equal(lines.length, 1, 'one line per event');
    t.notMatch(lines[0]!, /s3cret/, `${json ? 'JSON' : 'text'}: no secret`);
    t.match(lines[0]!, /REQ-1/);
    if (json) t.same(Object.keys(JSON.parse(lines[0]!)).slice(0, 3), ['time', 'level', 'msg'], 'valid JSON');
  }
});

t.test('daily file: one file per UTC day, 14 days kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-logs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let now = Date.parse('2026-03-01T23:59:59Z');
  const file = new DailyFileSink({ directory: dir, now: () => now });
  const log = createLogger({ level: 'info', json: false, sink: () => undefined, file });
  log.info('day one');
  now += 1000; // past midnight
  log.info('day two');
  await log.closeFile();
  t.same(readdirSync(dir).sort(), ['media-repo-2026-03-01.log', 'media-repo-2026-03-02.log']);
  t.match(readFileSync(join(dir, 'media-repo-2026-03-01.log'), 'utf8'), /day one\n$/);
  t.match(readFileSync(join(dir, 'media-repo-2026-03-02.log'), 'utf8'), /day two\n$/);
  for (let d = 0; d < 20; d++) {
    now += 86_400_000;
    log.info(`later ${d}`);
  }
  await log.closeFile();
  const names = readdirSync(dir).sort();
  t.equal(names.length, 14, '14 days kept');
  t.equal(names.at(-1), 'media-repo-2026-03-22.log', 'today is the newest');
  t.equal(names[0], 'media-repo-2026-03-09.log', 'the oldest is 13 days back');
  // A reopen on the same day appends instead of truncating.
  log.info('appended');
  await log.closeFile();
  t.match(readFileSync(join(dir, 'media-repo-2026-03-22.log'), 'utf8'), /later 19\n.*appended\n$/);
});

t.test('repo.logColors colours the level name on stdout, never in the file or in JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-colours-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const shown: string[] = [];
  const file = new DailyFileSink({ directory: dir });
  const log = createLogger({ level: 'info', json: false, colors: true, sink: (l) => shown.push(l), file });
  log.warn('careful', { token: 'secret-abc', path: '/x?access_token=secret-def' });
  await log.closeFile();
  t.match(shown[0], /^\S+ \x1b\[33mWARN \x1b\[0m careful /, 'WARN in yellow');
  t.notMatch(shown[0], /secret-/, 'still redacted');
  const written = readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8');
  t.notMatch(written, /\x1b\[/, 'the file stays plain');
  t.match(written, /WARN {2}careful /);
  const json: string[] = [];
  createLogger({ level: 'info', json: true, colors: true, sink: (l) => json.push(l) }).info('plain');
  t.equal(JSON.parse(json[0]!).level, 'info', 'JSON lines are never coloured');
});
