import { LRUCache } from 'lru-cache';

export interface CachedAuth {
  userId: string;
  isGuest: boolean;
}
export type TokenVerdict = CachedAuth | { invalid: true; softLogout: boolean };

// accessTokens.maxCacheTimeSeconds: remember the homeserver's answer for a token (valid or
// not) so a busy client costs one whoami per TTL instead of one per request.
export class TokenCache {
  private cache: LRUCache<string, TokenVerdict> | null = null;
  private ttlMs = 0;

  configure(maxCacheTimeSeconds: number): void {
    const ttl = Math.max(0, maxCacheTimeSeconds) * 1000;
    if (ttl === this.ttlMs) return;
    this.ttlMs = ttl;
    this.cache = ttl > 0 ? new LRUCache({ max: 100_000, ttl }) : null;
  }

  private key(server: string, token: string, asUser: string | null): string {
    return `${server}\n${token}\n${asUser ?? ''}`;
  }

  get(server: string, token: string, asUser: string | null): TokenVerdict | undefined {
    return this.cache?.get(this.key(server, token, asUser));
  }

  set(server: string, token: string, asUser: string | null, v: TokenVerdict): void {
    this.cache?.set(this.key(server, token, asUser), v);
  }

  /** After /logout: forget this token, whatever user it was asserted for. */
  dropToken(server: string, token: string): void {
    if (!this.cache) return;
    const prefix = `${server}\n${token}\n`;
    for (const k of [...this.cache.keys()]) if (k.startsWith(prefix)) this.cache.delete(k);
  }

  /** After /logout/all: forget every token of this user. */
  dropUser(server: string, userId: string): void {
    if (!this.cache) return;
    for (const [k, v] of [...this.cache.entries()]) {
      if (k.startsWith(`${server}\n`) && 'userId' in v && v.userId === userId) this.cache.delete(k);
    }
  }
}
