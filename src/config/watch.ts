// Live reload. Edits to the config file or directory are picked up without a restart; a broken
// edit is logged and ignored so a typo made on a running server cannot take it down.
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../logging/logger.js';
import { loadConfig } from './load.js';
import type { Config, LoadedConfig } from './schema.js';
import { isObject } from './validate.js';

/** Editors often write a file in several steps (truncate, write, rename); wait for the last. */
export const DEBOUNCE_MS = 300;

/** Keys read once at start-up (the socket, the log files, the database pool). A prefix ending
 * in '.' covers every key below it. */
export const RESTART_KEYS = [
  'repo.bindAddress',
  'repo.port',
  'repo.logDirectory',
  'repo.logColors',
  'repo.httpThreads',
  'database.',
  'thumbnails.numWorkers',
  'urlPreviews.numWorkers',
  'downloads.cache.',
  'metrics.',
];

/** Leaf paths under `prefix` whose values differ between a and b. */
function changedPaths(a: unknown, b: unknown, prefix: string, out: string[]): string[] {
  if (isObject(a) && isObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) changedPaths(a[k], b[k], `${prefix}.${k}`, out);
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push(prefix);
  }
  return out;
}

/** The restart-only keys that differ between two configs, e.g. ['repo.port', 'database.postgres']. */
export function restartKeysChanged(before: Config, after: Config): string[] {
  const changed = [
    ...changedPaths(before.repo, after.repo, 'repo', []),
    ...changedPaths(before.database, after.database, 'database', []),
    ...changedPaths(before.thumbnails, after.thumbnails, 'thumbnails', []),
    ...changedPaths(before.urlPreviews, after.urlPreviews, 'urlPreviews', []),
    ...changedPaths(before.metrics, after.metrics, 'metrics', []),
  ];
  return changed.filter((p) => RESTART_KEYS.some((k) => (k.endsWith('.') ? p.startsWith(k) : p === k)));
}

/** A comparable form: Maps do not survive JSON.stringify on their own. */
function fingerprint(c: LoadedConfig): string {
  return JSON.stringify([c.global, [...c.domains.entries()]]);
}

export function watchConfig(
  path: string,
  current: () => LoadedConfig,
  onChange: (next: LoadedConfig, changedRestartKeys: string[]) => void,
  log: Logger,
): { close(): void; reloadNow(): Promise<void> } {
  const target = resolve(path);
  const isDir = statSync(target).isDirectory();
  // Watch the containing directory for a single file: editors that save by writing a new file
  // and renaming it over the old one leave a watch on the old inode deaf.
  const dir = isDir ? target : dirname(target);
  const name = basename(target);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let chain = Promise.resolve(); // reloads run one at a time, in the order they were triggered

  const reload = async (asked = false): Promise<void> => {
    try {
      const next = await loadConfig(target);
      if (closed) return;
      const before = current();
      if (fingerprint(before) === fingerprint(next)) {
        // touched, not changed
        if (asked) log.info('config unchanged', { path: target });
        return;
      }
      onChange(next, restartKeysChanged(before.global, next.global));
    } catch (error) {
      if (!closed) log.error('config reload rejected; keeping the previous config', { error });
    }
  };

  const relevant = (file: string | null): boolean => file === null || (isDir ? /\.ya?ml$/i.test(file) : file === name);

  const watcher: FSWatcher = watch(dir, (_event, file) => {
    if (closed || !relevant(file === null ? null : String(file))) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      chain = chain.then(() => reload());
    }, DEBOUNCE_MS);
  });
  watcher.on('error', (error) => log.error('config watch failed; live reload is off', { error, path: dir }));

  return {
    /** Re-reads the config now (SIGHUP), in line with any reload the watcher started. */
    reloadNow(): Promise<void> {
      chain = chain.then(() => reload(true));
      return chain;
    },
    close(): void {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
