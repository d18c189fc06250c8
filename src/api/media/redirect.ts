import type { Datastore } from '../../datastores/datastore.js';
import type { Result } from '../../http/types.js';

/**
 * Where a download may send the client instead of proxying the bytes: the datastore's public
 * address (an S3 publicBaseUrl or a CDN), or null. Authenticated endpoints always may (clients
 * must follow redirects there, MSC3916); the legacy ones only when the client said it follows
 * them (`allow_redirect=true`, spec v1.7), since older clients do not.
 * Whether a blob held in the in-process cache is served from there instead is the caller's
 * call (ds.redirectWhenCached; see download.ts).
 */
export function publicRedirectUrl(ds: Datastore, location: string, authenticated: boolean, query: URLSearchParams): string | null {
  if (!ds.publicUrl) return null;
  if (!authenticated && query.get('allow_redirect') !== 'true') return null;
  return ds.publicUrl(location);
}

/** 307: the client repeats the same GET (or HEAD) at the public address. */
export function redirectResult(url: string): Result {
  return { kind: 'empty', status: 307, headers: { Location: url, 'Cache-Control': 'no-store' } };
}
