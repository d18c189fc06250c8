// The <meta> tags a preview reads, by property or name, the first occurrence of each winning
// (OpenGraph's rule for repeated properties). Only the keys we use are kept, so a page with a
// million distinct meta names holds no more memory than one with a dozen.
import { httpUrl } from './urls.js';

const KEYS = new Set([
  'og:title',
  'og:description',
  'og:site_name',
  'og:type',
  'og:url',
  'og:image',
  'og:image:url',
  'og:image:secure_url',
  'og:image:width',
  'og:image:height',
  'og:image:type',
  'twitter:title',
  'twitter:description',
  'twitter:image',
  'twitter:image:src',
  'description',
]);

interface MetaValue {
  content: string;
  /** The base URL in force where the tag stood: a later <base> does not move it. */
  base: string;
}

export class MetaTags {
  private readonly values = new Map<string, MetaValue>();

  /** Records a <meta> under its property and its name; the parser has decoded entities. */
  add(attribs: Record<string, string>, base: string): void {
    const content = attribs.content?.trim();
    if (!content) return; // an empty value names nothing, so a later tag may still supply it
    for (const attribute of [attribs.property, attribs.name]) {
      const key = attribute?.trim().toLowerCase();
      if (key && KEYS.has(key) && !this.values.has(key)) this.values.set(key, { content, base });
    }
  }

  /** The trimmed content, or undefined. */
  text(key: string): string | undefined {
    return this.values.get(key)?.content;
  }

  /** The content as an absolute http(s) URL resolved where the tag stood, or undefined. */
  url(key: string): string | undefined {
    const value = this.values.get(key);
    return value && httpUrl(value.content, value.base);
  }

  /** The first of `keys` that is present. */
  firstText(keys: readonly string[]): string | undefined {
    for (const key of keys) {
      const text = this.text(key);
      if (text) return text;
    }
    return undefined;
  }
}
