// One pass over a page's HTML gathering what a preview can be made of: meta tags, the <title>,
// the first headings, the start of the visible body text, the best <img>, the oEmbed link.
// SAX events only, no tree and no recursion; every store is bounded (see BoundedParser and
// TextCollector), so the work is linear in the page and capped on hostile ones.
import type { PreviewTextLimits } from '../protocol.js';
import { BoundedParser, type ScanHandler } from './bounded-parser.js';
import { MetaTags } from './meta-tags.js';
import { TextCollector } from './text-collector.js';
import { largerImg, type PreviewImage } from './image-pick.js';
import { httpUrl } from './urls.js';
import { hasAllMetaFields } from './fields.js';

export interface PageFacts {
  meta: MetaTags;
  /** Collapsed text of the first non-empty <title>, and of the first h1, h2 and h3. */
  title: string;
  headings: { h1: string; h2: string; h3: string };
  /** Collapsed visible body text, cut once there is more than the description can use. */
  bodyText: string;
  /** The largest sensibly sized <img>. */
  image?: PreviewImage;
  oembedUrl?: string;
  /** A work bound (maxTags, close-tag search) stopped the scan before the end. */
  truncated: boolean;
}

// Text here never shows: code, styles, fallbacks for disabled features, inline graphics.
const INVISIBLE = new Set([
  'script',
  'style',
  'noscript',
  'template',
  'svg',
  'math',
  'iframe',
  'object',
  'canvas',
  'video',
  'audio',
]);
// Page chrome: visible, but it describes the site rather than the page.
const CHROME = new Set(['nav', 'header', 'footer', 'aside']);
// Elements that run within a line: their edges do not separate words.
const INLINE = new Set([
  'a',
  'abbr',
  'b',
  'bdi',
  'bdo',
  'cite',
  'code',
  'data',
  'dfn',
  'em',
  'font',
  'i',
  'kbd',
  'mark',
  'q',
  's',
  'samp',
  'small',
  'span',
  'strong',
  'sub',
  'sup',
  'time',
  'u',
  'var',
  'wbr',
]);
type Heading = 'h1' | 'h2' | 'h3';

class PageScanner implements ScanHandler {
  readonly meta = new MetaTags();
  readonly title: TextCollector;
  readonly headings: Record<Heading, TextCollector>;
  readonly body: TextCollector;
  image: PreviewImage | undefined;
  oembedUrl: string | undefined;

  private base: string;
  private baseSeen = false;
  private invisible = 0;
  private chrome = 0;
  private inHead = 0;
  private inTitle = false;
  /** The <title> or heading whose text is being read, and its tag name. */
  private capture: { name: string; into: TextCollector } | undefined;
  private readonly finished = new Set<TextCollector>();

  /** `onMetaComplete` is called when the head ends with nothing left for the body to supply. */
  constructor(
    pageUrl: string,
    limits: PreviewTextLimits,
    private readonly onMetaComplete: () => void,
  ) {
    this.base = pageUrl;
    const titleText = () => new TextCollector(limits.numTitleWords, limits.maxTitleLength);
    this.title = titleText();
    this.headings = { h1: titleText(), h2: titleText(), h3: titleText() };
    this.body = new TextCollector(limits.numWords, limits.maxLength);
  }

  onopentag(name: string, attribs: Record<string, string>): void {
    switch (name) {
      case 'meta':
        this.meta.add(attribs, this.base);
        break;
      case 'link':
        this.link(attribs);
        break;
      case 'base':
        this.baseElement(attribs);
        break;
      case 'img':
        this.img(attribs);
        break;
      case 'head':
        this.inHead += 1;
        break;
      case 'body':
        this.endOfHead();
        break;
      case 'title':
        this.inTitle = true;
        this.startCapture(name, this.title);
        break;
      case 'h1':
      case 'h2':
      case 'h3':
        this.startCapture(name, this.headings[name]);
        break;
    }
    if (INVISIBLE.has(name)) this.invisible += 1;
    if (CHROME.has(name)) this.chrome += 1;
    if (!INLINE.has(name)) this.separateWords();
  }

  onclosetag(name: string): void {
    if (INVISIBLE.has(name)) this.invisible -= 1;
    if (CHROME.has(name)) this.chrome -= 1;
    if (!INLINE.has(name)) this.separateWords();
    if (this.capture?.name === name) {
      if (!this.capture.into.empty) this.finished.add(this.capture.into);
      this.capture = undefined;
    }
    if (name === 'title') this.inTitle = false;
    if (name === 'head') {
      this.inHead -= 1;
      this.endOfHead();
    }
  }

  ontext(text: string): void {
    if (this.invisible > 0) return;
    this.capture?.into.add(text);
    // Headings are part of the visible text too; the document's <title> is not.
    if (!this.inTitle && this.inHead === 0 && this.chrome === 0) this.body.add(text);
  }

  /** The first <base href> that is an http(s) URL sets the base for URLs after it. */
  private baseElement(attribs: Record<string, string>): void {
    if (this.baseSeen || attribs.href === undefined) return;
    this.baseSeen = true; // the HTML spec uses the first <base> with an href, usable or not
    this.base = httpUrl(attribs.href, this.base) ?? this.base;
  }

  private link(attribs: Record<string, string>): void {
    if (this.oembedUrl) return;
    const rel = attribs.rel?.toLowerCase().split(/\s+/) ?? [];
    if (!rel.includes('alternate') || attribs.type?.trim().toLowerCase() !== 'application/json+oembed') return;
    this.oembedUrl = httpUrl(attribs.href, this.base);
  }

  private img(attribs: Record<string, string>): void {
    if (this.invisible > 0) return;
    this.image = largerImg(attribs, this.base, this.image) ?? this.image;
  }

  private startCapture(name: string, into: TextCollector): void {
    if (this.invisible === 0 && !this.capture && !this.finished.has(into)) this.capture = { name, into };
  }

  private separateWords(): void {
    this.body.separate();
    this.capture?.into.separate();
  }

  // Past the head, the body can only add fallbacks; when the meta tags already gave every field
  // that has one, the rest of the page is not worth reading.
  private endOfHead(): void {
    if (hasAllMetaFields(this.meta)) this.onMetaComplete();
  }
}

/** Scans `html` for preview facts, stopping after `maxTags` tags. */
export function scanHtml(html: string, pageUrl: string, limits: PreviewTextLimits, maxTags: number): PageFacts {
  // The scanner only meets the parser through this callback, made before the parser exists.
  let parser: BoundedParser | undefined;
  const scanner = new PageScanner(pageUrl, limits, () => parser!.stop('done'));
  parser = new BoundedParser(scanner, maxTags);
  parser.write(html);
  if (!parser.stopped) parser.end();
  return {
    meta: scanner.meta,
    title: scanner.title.text(),
    headings: { h1: scanner.headings.h1.text(), h2: scanner.headings.h2.text(), h3: scanner.headings.h3.text() },
    bodyText: scanner.body.text(),
    image: scanner.image,
    oembedUrl: scanner.oembedUrl,
    truncated: parser.stopped === 'tags' || parser.stopped === 'close-search',
  };
}
