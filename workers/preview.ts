// Piscina worker for URL previews: a fetched page's bytes in, its OpenGraph-style fields out.
// Runs off the event loop because hostile HTML is cheap to send and costly to read; every step
// here is bounded (see preview/bounded-parser.ts). Imports nothing from src/.
//
// Never throws for what a page contains: any bytes give a result, possibly empty. It throws
// only for a malformed task, which is a bug on the calling side.
import type { PreviewOEmbedTask, PreviewParseResult, PreviewParseTask, PreviewTextLimits } from './protocol.js';
import { decodePage } from './preview/charset.js';
import { scanHtml } from './preview/html-scan.js';
import { pickFields } from './preview/fields.js';
import { looksBinary } from './preview/binary-sniff.js';
import { oEmbedFields } from './preview/oembed-fields.js';

const DEFAULT_MAX_TAGS = 200_000;

export default async function previewTask(task: PreviewParseTask | PreviewOEmbedTask): Promise<PreviewParseResult> {
  if (task?.op === 'preview-oembed') {
    if (!isHttpUrl(task.pageUrl))
      throw new TypeError(`pageUrl: expected an absolute http(s) URL, got ${JSON.stringify(task.pageUrl)}`);
    checkLimits(task.limits);
    return oEmbedFields(task.json, task.pageUrl, task.limits);
  }
  return previewHtml(task);
}

function previewHtml(task: PreviewParseTask): PreviewParseResult {
  checkTask(task);
  const page = decodePage(task.bytes, task.contentType);
  if (looksBinary(page.text)) return { charset: page.charset, truncated: false };
  const facts = scanHtml(page.text, task.pageUrl, task.limits, task.maxTags ?? DEFAULT_MAX_TAGS);
  return { charset: page.charset, ...pickFields(facts, task.limits), truncated: facts.truncated };
}

function checkTask(task: PreviewParseTask): void {
  if (task?.op !== 'preview-html') throw new TypeError(`op: expected 'preview-html', got ${JSON.stringify(task?.op)}`);
  if (!(task.bytes instanceof Uint8Array)) throw new TypeError('bytes: expected a Uint8Array');
  if (task.contentType !== null && typeof task.contentType !== 'string')
    throw new TypeError('contentType: expected a string or null');
  if (!isHttpUrl(task.pageUrl))
    throw new TypeError(`pageUrl: expected an absolute http(s) URL, got ${JSON.stringify(task.pageUrl)}`);
  checkLimits(task.limits);
  if (task.maxTags !== undefined) positiveInteger('maxTags', task.maxTags);
}

function checkLimits(given: PreviewTextLimits | undefined): void {
  const limits: Partial<PreviewTextLimits> = given ?? {};
  for (const key of ['numWords', 'maxLength', 'numTitleWords', 'maxTitleLength'] as const)
    positiveInteger(`limits.${key}`, limits[key]);
}

function positiveInteger(name: string, value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) < 1)
    throw new TypeError(`${name}: expected a positive integer, got ${JSON.stringify(value)}`);
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}
