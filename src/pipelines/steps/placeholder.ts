import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { sniffType } from '../../../workers/protocol.js';
import type { MediaBody } from '../../http/types.js';
import { memoryBody } from './serve-blob.js';

// What quarantined media answers when quarantine.replaceDownloads / replaceThumbnails is on:
// the operator's image (quarantine.thumbnailPath), else the built-in one. Read once per path.

const BUILT_IN = new URL('../../../../assets/quarantined.png', import.meta.url).pathname;

interface Placeholder {
  bytes: Buffer;
  contentType: string;
  etag: string;
}

const loaded = new Map<string, Promise<Placeholder>>();

async function load(path: string): Promise<Placeholder> {
  const bytes = await readFile(path);
  const type = sniffType(bytes.subarray(0, 512));
  return {
    bytes,
    contentType: type === 'image/jpeg' || type === 'image/png' || type === 'image/webp' ? type : 'image/png',
    etag: `placeholder-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`,
  };
}

export async function placeholderImage(thumbnailPath: string): Promise<{ contentType: string; media: MediaBody }> {
  const path = thumbnailPath || BUILT_IN;
  let p = loaded.get(path);
  if (!p) {
    p = load(path);
    // A missing file is tried again next time (the operator may fix it): not cached as failed.
    p.catch(() => loaded.delete(path));
    loaded.set(path, p);
  }
  const { bytes, contentType, etag } = await p;
  return { contentType, media: memoryBody(bytes, etag, bytes.length) };
}
