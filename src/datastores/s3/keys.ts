import { stagingName } from '../staging-names.js';
import { checkedLocation } from '../location.js';

// Object keys of an S3 datastore. Blobs live under their SHA-256, so two identical uploads can
// only ever produce one object, and a blob committed just before a crash is reused by the next
// upload of the same bytes instead of duplicated. Staging objects live under their own prefix
// and are named like staging files (see staging-names.ts).

export const STAGING_PREFIX = 'staging/';

/** `<sha256>`, or `<first prefixLength hex chars>/<sha256>` to spread keys (MMR's prefixLength). */
export function contentKey(sha256: string, prefixLength: number): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('commit: not a sha256 hex digest');
  return prefixLength > 0 ? `${sha256.slice(0, prefixLength)}/${sha256}` : sha256;
}

export function newStagingKey(instanceTag: string): string {
  return STAGING_PREFIX + stagingName(instanceTag);
}

/** A content address (with or without its prefix directory), as opposed to a staging key. */
export function isContentKey(key: string): boolean {
  return /^(?:[0-9a-f]{1,64}\/)?[0-9a-f]{64}$/.test(key);
}

/** The blob's address under publicBaseUrl (a CDN or a public bucket), or null without one. */
export function publicUrlFor(publicBaseUrl: string, location: string): string | null {
  if (!publicBaseUrl) return null;
  const base = publicBaseUrl.endsWith('/') ? publicBaseUrl : `${publicBaseUrl}/`;
  return base + checkedLocation(location).split('/').map(encodeURIComponent).join('/');
}

/**
 * The object's address at the S3 endpoint, path style (`scheme://endpoint/bucket/location`):
 * what MMR writes as `s3_url` in an export manifest, and what an import reads back.
 */
export function objectUrlFor(ssl: boolean, endpoint: string, bucket: string, location: string): string {
  const path = checkedLocation(location).split('/').map(encodeURIComponent).join('/');
  return `${ssl ? 'https' : 'http'}://${endpoint}/${encodeURIComponent(bucket)}/${path}`;
}

/**
 * The location an `s3_url` names in this bucket, or null when it names another endpoint or
 * bucket (or is no URL). Either scheme is accepted: MMR's manifests follow the endpoint's,
 * and an operator may have switched TLS on since. The object is then read with our own
 * credentials, never fetched from the URL: a manifest cannot point an import anywhere else.
 */
export function locationOfObjectUrl(url: string, endpoint: string, bucket: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
  if (u.username || u.password || u.search || u.hash) return null;
  if (u.host.toLowerCase() !== endpoint.toLowerCase()) return null;
  const segments = u.pathname.split('/').slice(1);
  if (segments.length < 2) return null;
  let decoded: string[];
  try {
    decoded = segments.map(decodeURIComponent);
  } catch {
    return null;
  }
  if (decoded[0] !== bucket) return null;
  const location = decoded.slice(1).join('/');
  try {
    return checkedLocation(location);
  } catch {
    return null;
  }
}
