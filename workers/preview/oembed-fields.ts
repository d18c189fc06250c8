// An oEmbed answer (https://oembed.com, section 2.3) as preview fields. The JSON came from a
// remote endpoint, so every value is checked for type and size here: strings only where strings
// belong, URLs only http(s), sizes only positive integers. A rich or video answer's `html` is
// read for its visible text with the same bounded scan as pages (its iframes and scripts skipped).
import type { PreviewParseResult, PreviewTextLimits } from '../protocol.js';
import { scanHtml } from './html-scan.js';
import { collectText } from './text-collector.js';
import { summarize } from './text-limits.js';
import { httpUrl } from './urls.js';

const MAX_HTML = 64 * 1024;
const MAX_HTML_TAGS = 10_000;

type Json = Record<string, unknown>;

const text = (o: Json, key: string): string | undefined =>
  typeof o[key] === 'string' ? (o[key] as string) : undefined;

function size(o: Json, key: string): number | undefined {
  const n = typeof o[key] === 'string' ? Number(o[key]) : o[key];
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function limited(value: string | undefined, maxWords: number, maxLength: number): string | undefined {
  return value === undefined ? undefined : summarize(collectText(value, maxWords, maxLength), maxWords, maxLength);
}

export function oEmbedFields(json: unknown, pageUrl: string, limits: PreviewTextLimits): PreviewParseResult {
  const o: Json = json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as Json) : {};
  const type = text(o, 'type');
  const result: PreviewParseResult = { charset: 'utf-8', truncated: false };
  const title = limited(text(o, 'title'), limits.numTitleWords, limits.maxTitleLength);
  if (title) result.title = title;
  const site = limited(text(o, 'provider_name'), limits.numTitleWords, limits.maxTitleLength);
  if (site) result.siteName = site;
  if (type && /^[a-z]{1,16}$/.test(type)) result.type = type;
  const html = text(o, 'html');
  if (html && (type === 'rich' || type === 'video')) {
    const facts = scanHtml(html.slice(0, MAX_HTML), pageUrl, limits, MAX_HTML_TAGS);
    const description = summarize(facts.bodyText, limits.numWords, limits.maxLength);
    if (description) result.description = description;
  }
  // A photo is its own image; every other type may carry a thumbnail.
  const photo = type === 'photo';
  const url = httpUrl(text(o, photo ? 'url' : 'thumbnail_url'), pageUrl);
  if (url) {
    result.image = { url };
    const width = size(o, photo ? 'width' : 'thumbnail_width');
    const height = size(o, photo ? 'height' : 'thumbnail_height');
    if (width) result.image.width = width;
    if (height) result.image.height = height;
  }
  return result;
}
