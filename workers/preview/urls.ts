// URLs a preview hands back (image, og:url, oEmbed) must be absolute http(s) and of a sane size:
// clients fetch them, and javascript:, data: or file: URLs have no business there.

export const MAX_URL_LENGTH = 2048;

// A raw value this much longer than the limit cannot shrink under it (only stripped tabs,
// newlines and dot segments make a URL shorter than its text), so it is not worth parsing.
const MAX_RAW_LENGTH = 4 * MAX_URL_LENGTH;

/** `raw` resolved against `base`, if the result is an http(s) URL of at most 2048 characters. */
export function httpUrl(raw: string | undefined, base: string): string | undefined {
  const value = raw?.trim();
  if (!value || value.length > MAX_RAW_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return url.href.length <= MAX_URL_LENGTH ? url.href : undefined;
}
