// Live reload: edits apply, broken edits are rejected with the old config kept, and changes to
// keys that only apply at start-up are reported.
import t from 'tap';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config/load.js';
import type { LoadedConfig } from '../src/config/schema.js';
import { restartKeysChanged, watchConfig } from '../src/config/watch.js';
import { validateConfig } from '../src/config/validate.js';
import { Logger } from '../src/logging/logger.js';

const body = (port: number | string, maxBytes: number, extra = ''): string => `repo: { port: ${port} }
homeservers: [{ name: a.org, csApi: "http://a" }]
datastores: [{ type: file, id: d, opts: { path: /tmp/d } }]
uploads: { maxBytes: ${maxBytes} }
${extra}`;

interface Harness {
  file: string;
  lines: string[];
  changes: { next: LoadedConfig; keys: string[] }[];
  /** Resolves on the next onChange, or rejects after ms. */
  nextChange(ms?: number): Promise<{ next: LoadedConfig; keys: string[] }>;
}

async function start(t: { teardown(fn: () => void): unknown }, name = 'media-repo.yaml'): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-watch-'));
  const file = join(dir, name);
  writeFileSync(file, body(8000, 1000));
  let config = await loadConfig(file);
  const lines: string[] = [];
  const changes: Harness['changes'] = [];
  let waiter: ((c: Harness['changes'][number]) => void) | undefined;
  const log = new Logger({ level: 'info', json: true, sink: (l) => lines.push(l) });
  const watcher = watchConfig(
    file,
    () => config,
    (next, keys) => {
      config = next;
      changes.push({ next, keys });
      waiter?.({ next, keys });
    },
    log,
  );
  t.teardown(() => {
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await sleep(50); // let the watch settle before the first edit
  return {
    file,
    lines,
    changes,
    nextChange: (ms = 3000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no onChange within ' + ms + ' ms')), ms);
        waiter = (c) => {
          clearTimeout(timer);
          waiter = undefined;
          resolve(c);
        };
      }),
  };
}

t.test('an edited file is reloaded and handed to onChange', async (t) => {
  const h = await start(t);
  const changed = h.nextChange();
  writeFileSync(h.file, body(8000, 2000));
  const { next, keys } = await changed;
  t.equal(next.global.uploads.maxBytes, 2000);
  t.equal(next.domains.get('a.org')!.uploads.maxBytes, 2000);
  t.same(keys, [], 'no restart-only key changed');
});

t.test('a file replaced by rename (how many editors save) is picked up', async (t) => {
  const h = await start(t);
  const changed = h.nextChange();
  writeFileSync(h.file + '.tmp', body(8000, 3000));
  renameSync(h.file + '.tmp', h.file);
  t.equal((await changed).next.global.uploads.maxBytes, 3000);
});

t.test('rapid writes are debounced into one reload', async (t) => {
  const h = await start(t);
  const changed = h.nextChange();
  for (let i = 1; i <= 5; i++) writeFileSync(h.file, body(8000, 4000 + i));
  t.equal((await changed).next.global.uploads.maxBytes, 4005);
  await sleep(500);
  t.equal(h.changes.length, 1);
});

t.test('a broken edit is logged and the old config kept', async (t) => {
  const h = await start(t);
  writeFileSync(h.file, body(8000, 1000, 'admins: [unclosed\n'));
  await sleep(800);
  t.equal(h.changes.length, 0, 'onChange not called for broken YAML');
  const errors = h.lines.map((l) => JSON.parse(l) as { level: string; msg: string; error: string });
  t.match(errors, [
    { level: 'error', msg: 'config reload rejected; keeping the previous config', error: /invalid YAML/ },
  ]);

  writeFileSync(h.file, body('"abc"', 1000));
  await sleep(800);
  t.equal(h.changes.length, 0, 'onChange not called for an invalid value');
  t.match(h.lines[1], /repo\.port: expected an integer from 0 to 65535/);

  const changed = h.nextChange();
  writeFileSync(h.file, body(8000, 7000));
  t.equal((await changed).next.global.uploads.maxBytes, 7000, 'a later good edit still applies');
});

t.test('restart-only keys that changed are reported', async (t) => {
  const h = await start(t);
  const changed = h.nextChange();
  writeFileSync(h.file, body(8100, 1000, 'database: { postgres: "postgres://x/y", pool: { maxConnections: 9 } }\n'));
  const { next, keys } = await changed;
  t.equal(next.global.repo.port, 8100);
  t.same(keys.sort(), ['database.pool.maxConnections', 'database.postgres', 'repo.port']);
});

t.test('restartKeysChanged compares only start-up keys', async (t) => {
  const ds = [{ type: 'file', id: 'd', opts: { path: '/tmp/d' } }];
  const a = validateConfig({ datastores: ds });
  t.same(
    restartKeysChanged(a, validateConfig({ datastores: ds, repo: { logLevel: 'debug' }, uploads: { maxBytes: 500 } })),
    [],
  );
  t.same(restartKeysChanged(a, validateConfig({ datastores: ds, repo: { bindAddress: '::', logDirectory: 'logs' } })), [
    'repo.bindAddress',
    'repo.logDirectory',
  ]);
  t.same(restartKeysChanged(a, validateConfig({ datastores: ds, database: { embeddedPath: 'elsewhere' } })), [
    'database.embeddedPath',
  ]);
});
