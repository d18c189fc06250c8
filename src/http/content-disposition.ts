// Content-Disposition for served media (spec "Serving inline content", MSC2702).

/** The spec's list of types safe to render inline; everything else is an attachment. */
const INLINE_TYPES = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** Compared case-insensitively and without parameters: `Text/Plain; charset=utf-8` is inline. */
export function isInlineType(contentType: string | null): boolean {
  if (!contentType) return false;
  return INLINE_TYPES.has(contentType.split(';')[0]!.trim().toLowerCase());
}

// RFC 9110 token characters: visible ASCII except separators.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 5987 encoding: everything but attr-chars is percent-encoded UTF-8. */
function encodeExtValue(name: string): string {
  return encodeURIComponent(name).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/**
 * `inline`/`attachment`, plus `filename=token` when the name is a plain token or
 * `filename*=utf-8''…` otherwise. CR, LF and quotes can only ever appear percent-encoded.
 */
export function contentDisposition(contentType: string | null, filename: string | null, forceInline = false): string {
  const type = forceInline || isInlineType(contentType) ? 'inline' : 'attachment';
  if (!filename) return type;
  if (TOKEN.test(filename)) return `${type}; filename=${filename}`;
  return `${type}; filename*=utf-8''${encodeExtValue(filename)}`;
}

/**
 * The filename a remote server gave in Content-Disposition: `filename*=utf-8''…` (RFC 5987)
 * wins over `filename=` (token or quoted string). Null when absent or unreadable; control
 * characters are never returned.
 */
export function filenameFromDisposition(header: string | null | undefined): string | null {
  if (!header) return null;
  const ext = /filename\*\s*=\s*([^;]+)/i.exec(header);
  if (ext) {
    const m = /^\s*([A-Za-z0-9_-]+)'[^']*'(.*?)\s*$/.exec(ext[1]!);
    if (m) {
      try {
        const name = m[1]!.toLowerCase() === 'utf-8' ? decodeURIComponent(m[2]!) : unescape(m[2]!);
        if (name && !/[\u0000-\u001f\u007f]/.test(name)) return name;
      } catch {
        /* fall through to filename= */
      }
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
  if (!plain) return null;
  const name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]!;
  return name && !/[\u0000-\u001f\u007f]/.test(name) ? name : null;
}
