import type { Headers, Result } from '../../http/types.js';
import { contentDisposition } from '../../http/content-disposition.js';
import type { MediaRow } from '../../pipelines/download.js';

// The headers media answers carry. Rows come from the row cache as the same object, so a hot
// download reuses one frozen headers object per row, and the responder its header block.

/** Media is immutable under its ID: clients and proxies may keep it (privately). */
export const MEDIA_CACHE_CONTROL = 'private, max-age=259200, immutable';

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
};

const headersByRow = new WeakMap<MediaRow, { fileName: string | undefined; headers: Headers }>();

/** A download's headers: its stored type (octet-stream when none), the name asked for or uploaded. */
export function downloadHeaders(row: MediaRow, fileName: string | undefined): Headers {
  const memo = headersByRow.get(row);
  if (memo && memo.fileName === fileName) return memo.headers;
  const headers = fileHeaders(row.contentType, fileName ?? row.uploadName);
  headersByRow.set(row, { fileName, headers });
  return headers;
}

export function fileHeaders(type: string | null, fileName: string | null): Headers {
  const contentType = type ?? 'application/octet-stream';
  return Object.freeze({
    'Content-Type': contentType,
    'Content-Disposition': contentDisposition(contentType, fileName),
    'Cache-Control': MEDIA_CACHE_CONTROL,
  });
}

/** Spec v1.12: thumbnails are always inline, with a filename. One frozen headers object per
 * output type (a handful), so the responder builds each type's header block once rather than
 * per request. */
const headersByType = new Map<string, Headers>();

export function thumbnailHeaders(contentType: string): Headers {
  let h = headersByType.get(contentType);
  if (!h) {
    const ext = EXTENSIONS[contentType] ?? 'png';
    h = Object.freeze({
      'Content-Type': contentType,
      'Content-Disposition': `inline; filename=thumbnail.${ext}`,
      'Cache-Control': MEDIA_CACHE_CONTROL,
    });
    // Types come from our own encoder output and stored rows; the bound is only a backstop.
    if (headersByType.size < 64) headersByType.set(contentType, h);
  }
  return h;
}

/** 307: the client repeats the same GET (or HEAD) at the public address. */
export function redirectResult(url: string): Result {
  return { kind: 'empty', status: 307, headers: { Location: url, 'Cache-Control': 'no-store' } };
}
