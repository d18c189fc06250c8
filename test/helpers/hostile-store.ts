import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { Queryable } from '../../src/db/driver.js';

// What an upload leaves behind, looked at from outside: media rows, blob files under the
// datastore and staging files under <datastore>/.staging.

export function blobFiles(mediaDir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.staging') continue;
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  walk(mediaDir);
  return out.sort();
}

export function stagingFiles(mediaDir: string): string[] {
  const d = join(mediaDir, '.staging');
  return existsSync(d) ? readdirSync(d) : [];
}

export async function mediaRowCount(db: Queryable): Promise<number> {
  const r = await db.query<{ n: unknown }>('SELECT count(*) AS n FROM media');
  return Number(r.rows[0]!.n);
}

/** Polls until `cond` holds or the deadline passes; returns the last value of `cond`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 3000, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export interface StoreSnapshot {
  rows: number;
  blobs: string[];
}

export async function snapshot(db: Queryable, mediaDir: string): Promise<StoreSnapshot> {
  return { rows: await mediaRowCount(db), blobs: blobFiles(mediaDir) };
}

/**
 * "Nothing was stored": same row count and blob files as `before`, and the staging folder
 * empties (staging files are removed asynchronously after the answer, so it is polled).
 */
export async function assertNothingStored(
  t: Test,
  db: Queryable,
  mediaDir: string,
  before: StoreSnapshot,
  what: string,
): Promise<void> {
  const drained = await waitFor(() => stagingFiles(mediaDir).length === 0, 3000);
  t.ok(drained, `${what}: no staging file left (${stagingFiles(mediaDir).join(', ')})`);
  t.equal(await mediaRowCount(db), before.rows, `${what}: no media row`);
  t.same(blobFiles(mediaDir), before.blobs, `${what}: no blob file`);
}
