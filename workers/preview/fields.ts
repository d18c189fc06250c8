// The preview's fields from what a scan found, each from its best source: OpenGraph first, then
// the Twitter card, then what the page itself shows (title, headings, body text, images).
import type { PreviewParseResult, PreviewTextLimits } from '../protocol.js';
import type { PageFacts } from './html-scan.js';
import type { MetaTags } from './meta-tags.js';
import { metaImage } from './image-pick.js';
import { collectText } from './text-collector.js';
import { summarize } from './text-limits.js';

const TITLE_KEYS = ['og:title', 'twitter:title'] as const;
const DESCRIPTION_KEYS = ['og:description', 'twitter:description', 'description'] as const;

/**
 * Whether meta tags alone settle every field the body could otherwise supply (title,
 * description, image): then a scan may stop at the end of the head.
 */
export function hasAllMetaFields(meta: MetaTags): boolean {
  return !!meta.firstText(TITLE_KEYS) && !!meta.firstText(DESCRIPTION_KEYS) && !!metaImage(meta);
}

type Fields = Omit<PreviewParseResult, 'charset' | 'truncated'>;

export function pickFields(facts: PageFacts, limits: PreviewTextLimits): Fields {
  const { meta } = facts;
  const title = (text: string) => limitText(text, limits.numTitleWords, limits.maxTitleLength);
  const fields: Fields = {
    title: title(
      meta.firstText(TITLE_KEYS) ?? (facts.title || facts.headings.h1 || facts.headings.h2 || facts.headings.h3),
    ),
    description: limitText(meta.firstText(DESCRIPTION_KEYS) ?? facts.bodyText, limits.numWords, limits.maxLength),
    siteName: title(meta.text('og:site_name') ?? ''),
    type: shortToken(meta.text('og:type')),
    url: meta.url('og:url'),
    image: metaImage(meta) ?? facts.image,
    oembedUrl: facts.oembedUrl,
  };
  // Absent rather than undefined: the result crosses a thread as a structured clone.
  for (const key of Object.keys(fields) as (keyof Fields)[]) if (fields[key] === undefined) delete fields[key];
  return fields;
}

// Meta values may be megabytes long; collect only what the limits can use before summarizing.
function limitText(text: string, maxWords: number, maxLength: number): string | undefined {
  return summarize(collectText(text, maxWords, maxLength), maxWords, maxLength);
}

// og:type is a short identifier ("article", "video.movie"); anything long is not one, and a cut
// identifier would be a wrong one.
function shortToken(text: string | undefined): string | undefined {
  return text && text.length <= 64 ? text : undefined;
}
