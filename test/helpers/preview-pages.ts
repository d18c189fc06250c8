// Calls the URL-preview worker function directly, on pages given as text or as exact bytes.
import previewHtml from '../../workers/preview.js';
import type { PreviewParseResult, PreviewParseTask, PreviewTextLimits } from '../../workers/protocol.js';

export const PAGE_URL = 'https://news.example/articles/2024/story.html';

export const LIMITS: PreviewTextLimits = { numWords: 50, maxLength: 200, numTitleWords: 30, maxTitleLength: 150 };

export type PageOptions = Partial<Omit<PreviewParseTask, 'op' | 'bytes'>>;

/** A task for `page`: a string is sent as UTF-8, bytes as they are. */
export function previewTask(page: string | Uint8Array, options: PageOptions = {}): PreviewParseTask {
  return {
    op: 'preview-html',
    bytes: typeof page === 'string' ? new TextEncoder().encode(page) : page,
    contentType: 'text/html',
    pageUrl: PAGE_URL,
    limits: LIMITS,
    ...options,
  };
}

export function preview(page: string | Uint8Array, options: PageOptions = {}): Promise<PreviewParseResult> {
  return previewHtml(previewTask(page, options));
}

/** Bytes from ASCII text and raw byte runs, for pages in legacy encodings. */
export function bytesOf(...parts: (string | number[])[]): Uint8Array {
  return new Uint8Array(
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))),
  );
}
