// Matrix "Unpadded Base64" (spec appendix): standard RFC 4648 alphabet without '=' padding.
// Decoders SHOULD accept padding, and some implementations emit URL-safe text, so decoding
// takes all of those. Buffer.from(s, 'base64') silently skips characters it does not know,
// which would let a corrupted signature or key decode to something else: validate first.

export function encodeUnpaddedBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64').replace(/=+$/, '');
}

const BASE64 = /^[A-Za-z0-9+/_-]*$/;

export function decodeBase64(s: string): Buffer {
  const body = s.replace(/={1,2}$/, '');
  if (!BASE64.test(body)) throw new Error('base64: invalid character');
  // Padding, when present, must complete a 4-character group; one leftover character can
  // never encode a whole byte.
  if (body.length !== s.length && s.length % 4 !== 0) throw new Error('base64: bad padding');
  if (body.length % 4 === 1) throw new Error('base64: truncated input');
  return Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
