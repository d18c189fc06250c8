#!/usr/bin/env node
// The `media-repo` executable. sharp runs on libuv's thread pool, whose size (UV_THREADPOOL_SIZE)
// is read once when libuv first uses it; ES module loading already uses it, so this file is
// CommonJS (synchronous loading), sizes the pool from thumbnails.numWorkers and repo.httpThreads,
// then starts the CLI. It reads only those two keys, with the CLI's rules for finding the config; anything it cannot
// read leaves the decision to the defaults and the CLI reports the real error.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { httpThreadCount, libuvThreadsFor, poolThreads } from './pools/thumbnail-threads.cjs';

function configPath(argv: string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-config' || a === '--config') found = argv[++i];
    else if (a.startsWith('-config=') || a.startsWith('--config=')) found = a.slice(a.indexOf('=') + 1);
  }
  return found ?? (process.env.REPO_CONFIG || undefined);
}

/** section.key (a count) from the main (non per-domain) documents; 0 when not set. */
function configuredCount(path: string | undefined, section: 'thumbnails' | 'repo', key: string): number {
  if (!path) return 0;
  try {
    const files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => /\.ya?ml$/i.test(f))
          .sort()
          .map((f) => join(path, f))
      : [path];
    let n = 0;
    for (const f of files) {
      const doc = yaml.load(readFileSync(f, 'utf8')) as Record<string, Record<string, unknown> | undefined> | undefined;
      const v = doc && !('homeserver' in doc) ? doc[section]?.[key] : undefined;
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) n = v;
    }
    return n;
  } catch {
    return 0;
  }
}

if (!process.env.UV_THREADPOOL_SIZE) {
  const path = configPath(process.argv.slice(2));
  process.env.UV_THREADPOOL_SIZE = String(
    libuvThreadsFor(
      poolThreads(configuredCount(path, 'thumbnails', 'numWorkers')),
      httpThreadCount(configuredCount(path, 'repo', 'httpThreads')),
    ),
  );
}
void import('./cli.js');
