import { LRUCache } from 'lru-cache';

interface Verdict {
  userId: string;
  isAdmin: boolean;
}

// Whether a user is an admin of their homeserver, as its admin API said, per (server, token,
// user). It follows accessTokens.maxCacheTimeSeconds like the token cache (0: ask every time),
// so a demoted admin keeps their rights no longer than a logged-out token keeps working.
export class AdminStatusCache {
  private cache: LRUCache<string, Verdict> | null = null;
  private ttlMs = 0;

  configure(maxCacheTimeSeconds: number): void {
    const ttl = Math.max(0, maxCacheTimeSeconds) * 1000;
    if (ttl === this.ttlMs) return;
    this.ttlMs = ttl;
    this.cache = ttl > 0 ? new LRUCache({ max: 100_000, ttl }) : null;
  }

  private key(server: string, token: string, userId: string): string {
    return `${server}\n${token}\n${userId}`;
  }

  get(server: string, token: string, userId: string): boolean | undefined {
    return this.cache?.get(this.key(server, token, userId))?.isAdmin;
  }

  set(server: string, token: string, userId: string, isAdmin: boolean): void {
    this.cache?.set(this.key(server, token, userId), { userId, isAdmin });
  }

  /** After /logout: forget what this token was told. */
  dropToken(server: string, token: string): void {
    if (!this.cache) return;
    const prefix = `${server}\n${token}\n`;
    for (const k of [...this.cache.keys()]) if (k.startsWith(prefix)) this.cache.delete(k);
  }

  /** After /logout/all: forget this user's answers under every token. */
  dropUser(server: string, userId: string): void {
    if (!this.cache) return;
    for (const [k, v] of [...this.cache.entries()]) {
      if (k.startsWith(`${server}\n`) && v.userId === userId) this.cache.delete(k);
    }
  }
}
