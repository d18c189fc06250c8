// Where a page names its encoding: the Content-Type's charset parameter, and <meta> tags in the
// first 1024 bytes (the HTML spec's prescan window). Only labels are found here; charset.ts
// decides which one wins and whether TextDecoder knows it.

/** The bytes a prescan looks at (HTML Living Standard, "prescan a byte stream"). */
const PRESCAN_BYTES = 1024;

// `charset=value` with the value bare or quoted, as in a Content-Type header or an http-equiv
// meta's content. The leading \b keeps "xcharset=" from matching.
const CHARSET_PARAM = /\bcharset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"',]+))/i;

/** The charset parameter of a Content-Type-like value, or undefined. */
export function charsetParam(contentType: string | null | undefined): string | undefined {
  if (!contentType) return undefined;
  const m = CHARSET_PARAM.exec(contentType);
  const label = (m?.[1] ?? m?.[2] ?? m?.[3])?.trim();
  return label ? label : undefined;
}

const COMMENT = /<!--[\s\S]*?(?:-->|$)/g;
const META_TAG = /<meta[\s/]([^>]*)/gi;
const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?/g;

/**
 * The charset declared by the first <meta charset> or <meta http-equiv="Content-Type"> within the
 * first 1024 bytes. A simplified prescan: comments are skipped (a commented-out meta must not
 * count) and tags are read with bounded regular expressions over at most 1024 characters.
 */
export function prescanMetaCharset(bytes: Uint8Array): string | undefined {
  // latin1 maps each byte to one character, so an ASCII-compatible declaration reads as written
  // whatever the page's real encoding is.
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, PRESCAN_BYTES))
    .toString('latin1')
    .replace(COMMENT, ' ');
  for (const tag of head.matchAll(META_TAG)) {
    const label = metaTagCharset(tag[1]!);
    if (label) return label;
  }
  return undefined;
}

function metaTagCharset(attributeText: string): string | undefined {
  const attributes = new Map<string, string>();
  for (const a of attributeText.matchAll(ATTRIBUTE)) {
    const name = a[1]!.toLowerCase();
    // Like a parser, the first of a repeated attribute counts.
    if (!attributes.has(name)) attributes.set(name, a[2] ?? a[3] ?? a[4] ?? '');
  }
  const charset = attributes.get('charset')?.trim();
  if (charset) return utf16AsUtf8(charset);
  if (attributes.get('http-equiv')?.trim().toLowerCase() !== 'content-type') return undefined;
  const fromContent = charsetParam(attributes.get('content'));
  return fromContent && utf16AsUtf8(fromContent);
}

// A page whose <meta> could be read as ASCII cannot be UTF-16, so the spec reads such a
// declaration as UTF-8.
function utf16AsUtf8(label: string): string {
  return /^utf-16(?:[bl]e)?$/i.test(label) ? 'utf-8' : label;
}
