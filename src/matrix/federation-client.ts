import type { Config } from '../config/schema.js';
import { IpRangeList } from '../net/ip-ranges.js';
import { safeJson, safeRequest, type SafeResponse } from '../net/safe-request.js';
import { createDiscovery, type ResolvedServer } from './discovery.js';
import { signRequest } from './x-matrix.js';
import type { SigningKey } from './signing-keys.js';

// Outbound federation: server discovery, then requests through the SSRF-safe client (every
// resolved address and redirect hop checked against federation.allowed/disallowedNetworks),
// signed with X-Matrix when we have a key. Lists are rebuilt when the config changes.

type Discovery = ReturnType<typeof createDiscovery>;

export interface FederationRequest {
  /** Our server name (the homeserver the request is made for): the X-Matrix origin. */
  origin: string;
  destination: string;
  /** Path and query, exactly as signed and sent. */
  uri: string;
  key: SigningKey | null;
  timeoutMs: number;
  maxBytes: number;
  maxRedirects?: number;
}

export class FederationClient {
  private lists: { key: string; allow: IpRangeList; deny: IpRangeList; discovery: Discovery } | null = null;

  constructor(private readonly config: () => Config) {}

  private current() {
    const f = this.config().federation;
    const key = JSON.stringify([f.allowedNetworks, f.disallowedNetworks]);
    if (!this.lists || this.lists.key !== key) {
      const allow = IpRangeList.parse(f.allowedNetworks);
      const deny = IpRangeList.parse(f.disallowedNetworks);
      const timeoutMs = this.config().timeouts.federationTimeoutSeconds * 1000;
      this.lists = {
        key,
        allow,
        deny,
        discovery: createDiscovery({ allow, deny, timeoutMs: Math.min(timeoutMs, 30_000) }),
      };
    }
    return this.lists;
  }

  /** A request to another server's federation (or media) API. */
  async request(r: FederationRequest): Promise<SafeResponse> {
    const { allow, deny, discovery } = this.current();
    const target = await discovery.resolve(r.destination);
    const headers: Record<string, string> = { Host: target.hostHeader, 'User-Agent': 'media-repo' };
    if (r.key)
      headers.Authorization = signRequest(
        { method: 'GET', uri: r.uri, origin: r.origin, destination: r.destination },
        r.key,
      );
    return safeRequest(new URL(r.uri, target.baseUrl), {
      headers,
      allow,
      deny,
      timeoutMs: r.timeoutMs,
      maxBytes: r.maxBytes,
      maxRedirects: r.maxRedirects ?? 0,
      connectTo: { host: target.host, port: target.port },
      tlsServername: target.tlsServername,
    });
  }

  /** A URL given to us by a remote server (a multipart Location part): unsigned, same checks. */
  async fetchUrl(url: string, timeoutMs: number, maxBytes: number): Promise<SafeResponse> {
    const { allow, deny } = this.current();
    return safeRequest(url, {
      allow,
      deny,
      timeoutMs,
      maxBytes,
      maxRedirects: 5,
      headers: { 'User-Agent': 'media-repo' },
    });
  }

  /**
   * Server discovery, then GET /_matrix/federation/v1/version at the address found (unsigned,
   * small JSON, capped): MMR's admin federation test. Answers where discovery led, too.
   */
  async version(serverName: string, timeoutMs: number): Promise<{ target: ResolvedServer; json: unknown }> {
    const { allow, deny, discovery } = this.current();
    const target = await discovery.resolve(serverName);
    const res = await safeJson(new URL('/_matrix/federation/v1/version', target.baseUrl), {
      headers: { Host: target.hostHeader, 'User-Agent': 'media-repo' },
      allow,
      deny,
      timeoutMs,
      maxBytes: 64 * 1024,
      connectTo: { host: target.host, port: target.port },
      tlsServername: target.tlsServername,
    });
    return { target, json: res.json };
  }

  /** GET /_matrix/key/v2/server of a server (small JSON, capped). */
  async serverKeys(serverName: string): Promise<unknown> {
    const { allow, deny, discovery } = this.current();
    const target = await discovery.resolve(serverName);
    const res = await safeJson(new URL('/_matrix/key/v2/server', target.baseUrl), {
      headers: { Host: target.hostHeader },
      allow,
      deny,
      timeoutMs: 15_000,
      maxBytes: 64 * 1024,
      connectTo: { host: target.host, port: target.port },
      tlsServername: target.tlsServername,
    });
    return res.json;
  }
}
