import { createHash } from 'node:crypto';

// Entry names inside an export: `origin__mediaId.ext` as MMR names them. MMR sniffs the
// extension from the bytes; we take it from the recorded content type (the bytes are streamed,
// not held), which gives the same name for the common types. The name only has to be unique:
// importers find an entry through the manifest's file_name, never by parsing it.

const EXTENSIONS: Record<string, string> = {
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'image/webp': '.webp',
  'image/avif': '.avif',
  'image/heic': '.heic',
  'image/svg+xml': '.svg',
  'image/bmp': '.bmp',
  'image/tiff': '.tiff',
  'video/mp4': '.mp4',
  'video/webm': '.webm',
  'video/quicktime': '.mov',
  'audio/mpeg': '.mp3',
  'audio/ogg': '.ogg',
  'audio/mp4': '.m4a',
  'audio/wav': '.wav',
  'audio/webm': '.webm',
  'application/pdf': '.pdf',
  'application/zip': '.zip',
  'application/json': '.json',
  'text/plain': '.txt',
  'text/html': '.html',
};

export function extensionFor(contentType: string | null): string {
  if (!contentType) return '';
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return EXTENSIONS[base] ?? '';
}

/** Characters kept as they are; media IDs and server names need nothing else. */
const SAFE = /[^A-Za-z0-9._:\-[\]=]/g;

export function archivedName(origin: string, mediaId: string, contentType: string | null): string {
  const raw = `${origin}__${mediaId}`;
  let name = raw.replace(SAFE, '_');
  // A replaced character could make two mxcs collide: a short hash of the original keeps them apart.
  if (name !== raw) name += `-${createHash('sha256').update(raw).digest('hex').slice(0, 12)}`;
  if (name.startsWith('.')) name = `_${name}`;
  return name + extensionFor(contentType);
}
