// Which image represents a page: the one its OpenGraph or Twitter card names, else the largest
// <img> that looks like content rather than a tracking pixel, spacer or banner.
import type { PreviewParseResult } from '../protocol.js';
import type { MetaTags } from './meta-tags.js';
import { httpUrl } from './urls.js';

export type PreviewImage = NonNullable<PreviewParseResult['image']>;

// Smaller than this on either side is an icon, a spacer or a 1x1 tracking pixel.
const MIN_SIDE = 48;
// Wider (or taller) than 4:1 is a banner or a divider, not a picture of the page.
const MAX_ASPECT = 4;

/** The image named by meta tags: og:image and its aliases, then the Twitter card's. */
export function metaImage(meta: MetaTags): PreviewImage | undefined {
  for (const key of ['og:image', 'og:image:url', 'og:image:secure_url']) {
    const url = meta.url(key);
    if (!url) continue;
    const image: PreviewImage = { url };
    const width = dimension(meta.text('og:image:width'));
    const height = dimension(meta.text('og:image:height'));
    const type = mimeType(meta.text('og:image:type'));
    if (width) image.width = width;
    if (height) image.height = height;
    if (type) image.type = type;
    return image;
  }
  for (const key of ['twitter:image', 'twitter:image:src']) {
    const url = meta.url(key);
    if (url) return { url };
  }
  return undefined;
}

/**
 * The <img> as the new fallback image if it declares a sensible size, is larger than `best` (the
 * earlier one wins a tie) and has an http(s) source. Sizes are compared before the URL is parsed:
 * a page may hold 100k images and only the few that grow the best one are worth resolving.
 */
export function largerImg(
  attribs: Record<string, string>,
  base: string,
  best: PreviewImage | undefined,
): PreviewImage | undefined {
  const width = dimension(attribs.width);
  const height = dimension(attribs.height);
  if (!width || !height || width < MIN_SIDE || height < MIN_SIDE) return undefined;
  if (Math.max(width, height) > MAX_ASPECT * Math.min(width, height)) return undefined;
  if (best && width * height <= best.width! * best.height!) return undefined;
  const url = httpUrl(attribs.src, base); // data: and javascript: sources drop out here
  return url ? { url, width, height } : undefined;
}

// Pixels as an HTML dimension attribute or og:image:width writes them: "640", "640px", "640.0";
// not "50%" nor "auto". Digits are read by hand: a page may carry 100k <img> tags, and this is
// several times cheaper than a regular expression per attribute.
function dimension(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let n = 0;
  let i = 0;
  for (; i < text.length && i < 9; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    n = n * 10 + digit;
  }
  if (n === 0) return undefined;
  return i === text.length || /^(?:\.\d*)?\s*(?:px)?$/i.test(text.slice(i)) ? n : undefined;
}

function mimeType(value: string | undefined): string | undefined {
  const type = value?.trim().toLowerCase();
  return type && type.length <= 255 && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : undefined;
}
