import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FOREIGN_STAGING_MAX_AGE_MS } from './datastore.js';

// Staging objects (files or S3 keys) are named after the instance that wrote them, so a sweep
// can tell its own leftovers (always removable at start-up: that instance is not running them)
// from another instance's uploads, which may still be in progress until they are old.

export function stagingName(instanceTag: string): string {
  return `${instanceTag}-${Date.now()}-${randomBytes(8).toString('hex')}`;
}

export function isOwnStagingName(name: string, instanceTag: string): boolean {
  return name.startsWith(`${instanceTag}-`);
}

/** Whether a staging leftover may be removed now: ours, or another instance's old enough. */
export function sweepable(name: string, instanceTag: string, modifiedMs: number, now = Date.now()): boolean {
  return isOwnStagingName(name, instanceTag) || now - modifiedMs > FOREIGN_STAGING_MAX_AGE_MS;
}

/** Removes sweepable files of a local staging directory; returns how many. */
export async function sweepStagingDir(dir: string, instanceTag: string): Promise<number> {
  let removed = 0;
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const modified = isOwnStagingName(name, instanceTag)
      ? now
      : (await stat(p).catch(() => ({ mtimeMs: now }))).mtimeMs;
    if (sweepable(name, instanceTag, modified, now)) {
      await rm(p, { force: true });
      removed++;
    }
  }
  return removed;
}
