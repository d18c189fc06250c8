import { decodeBase64 } from './base64.js';
import { verifyJsonSignature } from './signing-keys.js';

// Other servers' signing keys, for checking inbound X-Matrix requests. Keys come from
// `GET /_matrix/key/v2/server` on the server itself (the HTTP call is injected). A response
// counts only if it is for the server asked, still valid, and signed by every ed25519 key it
// lists (proof that the server holds those keys). old_verify_keys are never returned: the spec
// makes them valid for old events only, and requests are always signed with a current key.
//
// Caching, per server: a good response for half its remaining validity (at most 7 days), so
// keys are refreshed well before they lapse; a failure for 60 s so a broken or hostile server
// is not fetched on every request; an unknown key ID refetches at most once per 60 s (a server
// that rotated its key is picked up quickly, random key IDs cannot force a fetch per request).
// Concurrent lookups for one server share a single fetch.

export interface ServerKeyFetcher {
  /** Unpadded base64 public key, or null when the server has no such current key or cannot be reached. */
  publicKey(serverName: string, keyId: string): Promise<string | null>;
}

interface FetcherOptions {
  fetchKeys: (serverName: string) => Promise<unknown>;
  now?: () => number;
  log?: { warn(msg: string, fields?: object): void };
}

interface Entry {
  keys: Map<string, string> | null; // null: the last fetch failed
  expiresAt: number;
  fetchedAt: number;
}

export const FAILURE_TTL_MS = 60_000;
export const REFETCH_INTERVAL_MS = 60_000;
export const MAX_CACHE_MS = 7 * 24 * 3600_000;
const MAX_SERVERS = 10_000; // bounds memory if many origins (or forged origin names) show up

export function createServerKeyFetcher(opts: FetcherOptions): ServerKeyFetcher {
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<Entry>>();

  const store = (server: string, e: Entry): Entry => {
    cache.delete(server); // re-insert so Map order is oldest-stored first
    cache.set(server, e);
    if (cache.size > MAX_SERVERS) cache.delete(cache.keys().next().value!);
    return e;
  };

  async function fetchEntry(server: string): Promise<Entry> {
    const started = now();
    try {
      const { keys, validUntil } = validate(server, await opts.fetchKeys(server), started);
      const ttl = Math.min(Math.floor((validUntil - started) / 2), MAX_CACHE_MS);
      return store(server, { keys, expiresAt: started + ttl, fetchedAt: started });
    } catch (e) {
      opts.log?.warn('fetching server keys failed', { server, error: (e as Error).message });
      const prev = cache.get(server);
      // A failed refetch for an unknown key ID must not throw away keys that are still good.
      if (prev?.keys && prev.expiresAt > started) return store(server, { ...prev, fetchedAt: started });
      return store(server, { keys: null, expiresAt: started + FAILURE_TTL_MS, fetchedAt: started });
    }
  }

  function refresh(server: string): Promise<Entry> {
    let p = inflight.get(server);
    if (!p) {
      p = fetchEntry(server).finally(() => inflight.delete(server));
      inflight.set(server, p);
    }
    return p;
  }

  return {
    async publicKey(server, keyId) {
      const t = now();
      const cached = cache.get(server);
      if (cached && cached.expiresAt > t) {
        if (!cached.keys) return null;
        const k = cached.keys.get(keyId);
        if (k !== undefined || t - cached.fetchedAt < REFETCH_INTERVAL_MS) return k ?? null;
      }
      return (await refresh(server)).keys?.get(keyId) ?? null;
    },
  };
}

function validate(server: string, body: unknown, now: number): { keys: Map<string, string>; validUntil: number } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('response is not a JSON object');
  const r = body as Record<string, unknown>;
  if (r.server_name !== server) throw new Error(`response is for ${JSON.stringify(r.server_name)}, not ${server}`);
  const validUntil = r.valid_until_ts;
  if (typeof validUntil !== 'number' || !Number.isSafeInteger(validUntil))
    throw new Error('valid_until_ts missing or not an integer');
  if (validUntil <= now) throw new Error(`keys expired at ${new Date(validUntil).toISOString()}`);
  const vk = r.verify_keys;
  if (!vk || typeof vk !== 'object' || Array.isArray(vk)) throw new Error('verify_keys missing');
  const keys = new Map<string, string>();
  for (const [id, v] of Object.entries(vk as Record<string, unknown>)) {
    if (!id.startsWith('ed25519:')) continue; // algorithms we cannot check are unusable anyway
    const key = (v as { key?: unknown } | null)?.key;
    if (typeof key !== 'string' || !isKey(key)) throw new Error(`verify_keys.${id} has no valid ed25519 key`);
    if (!verifyJsonSignature(r, server, id, key)) throw new Error(`response is not self-signed by ${id}`);
    keys.set(id, key);
  }
  if (keys.size === 0) throw new Error('no ed25519 verify_keys');
  return { keys, validUntil };
}

function isKey(b64: string): boolean {
  try {
    return decodeBase64(b64).length === 32;
  } catch {
    return false;
  }
}
