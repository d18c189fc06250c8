// Matrix server discovery (server-server API, "Resolving server names"): turns a server name
// into where to connect, the Host header, and the certificate name. The .well-known fetch goes
// through safeJson, so it is deny-listed, capped at 64 KiB and deadline-bound (MMR read it
// unbounded: CVE-2024-52791). Only the .well-known outcome is cached: SRV and A/AAAA answers
// are looked up per call (safeRequest resolves and pins the host when it connects).
import { Resolver } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { IpRangeList } from '../net/ip-ranges.js';
import { safeJson } from '../net/safe-request.js';

export interface ResolvedServer {
  serverName: string;
  /** Where to connect (hostname or IP literal without brackets); resolve + pin at request time. */
  host: string;
  port: number;
  /** Host header value. */
  hostHeader: string;
  /** TLS certificate name / SNI. */
  tlsServername: string;
  /** https://<hostHeader>, or http:// when MEDIA_REPO_HTTP_ONLY_FEDERATION=true. */
  baseUrl: string;
}

type SrvRecord = { name: string; port: number; priority: number; weight: number };

export interface DiscoveryOptions {
  allow: IpRangeList;
  deny: IpRangeList;
  timeoutMs: number;
  resolveSrv?: (name: string) => Promise<SrvRecord[]>;
  resolve?: (host: string) => Promise<string[]>;
  now?: () => number;
  /** Default: process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION === 'true'. */
  httpOnly?: boolean;
  /** Port for the .well-known fetch (tests); default 443, or 80 when httpOnly. */
  wellKnownPort?: number;
}

interface ParsedName {
  host: string;
  port?: number;
  ip: boolean;
}

/** Spec grammar: hostname [":" port], hostname = IPv4 / "[" IPv6 "]" / dns-name. A dns-name
 * whose last label is numeric (127.1, 2130706433, a.0x7f) is refused: URL parsers would read
 * it as an IP address, so it is an IP literal posing as a hostname. */
export function parseServerName(name: string): ParsedName | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+)(?::(\d{1,5}))?$/.exec(name);
  if (!m || name.length > 255 + 6) return null;
  const [, hostPart, portText] = m;
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) return null;
  if (hostPart.startsWith('[')) {
    const v6 = hostPart.slice(1, -1);
    return isIPv6(v6) ? { host: v6, port, ip: true } : null;
  }
  if (isIPv4(hostPart)) return { host: hostPart, port, ip: true };
  const labels = hostPart.split('.');
  if (hostPart.length > 255 || labels.some((l) => l === '' || l.length > 63)) return null;
  if (/^(0x[0-9a-f]*|[0-9]+)$/i.test(labels[labels.length - 1])) return null;
  return { host: hostPart, port, ip: false };
}

const HOUR = 3600_000;
/** Well-known TTLs: spec-suggested default 24 h, capped at 48 h; at least 1 min so a remote
 * sending max-age=0 cannot make us refetch on every request. Failures (including oversized or
 * invalid responses) are remembered 10 min: long enough to absorb a hostile or broken peer,
 * short enough that a fixed server is found again quickly. */
const WK_DEFAULT_MS = 24 * HOUR,
  WK_MAX_MS = 48 * HOUR,
  WK_MIN_MS = 60_000,
  WK_ERROR_MS = 10 * 60_000;
const CACHE_ENTRIES = 10_000;

function ttlFrom(headers: IncomingHttpHeaders, now: number): number {
  const cc = String(headers['cache-control'] ?? '');
  const maxAge = /(?:^|[,\s])max-age\s*=\s*"?(\d+)/i.exec(cc);
  let ttl = WK_DEFAULT_MS;
  if (maxAge) ttl = Number(maxAge[1]) * 1000;
  else if (headers.expires) {
    const at = Date.parse(String(headers.expires));
    if (!Number.isNaN(at)) ttl = at - now;
  }
  return Math.min(WK_MAX_MS, Math.max(WK_MIN_MS, ttl));
}

/** RFC 2782: lowest priority first, then a weighted random pick within that priority. */
function pickSrv(records: SrvRecord[]): SrvRecord | undefined {
  const usable = records.filter((r) => r.name !== '' && r.name !== '.'); // "." = service refused
  if (usable.length === 0) return undefined;
  const best = Math.min(...usable.map((r) => r.priority));
  const tier = usable.filter((r) => r.priority === best);
  const total = tier.reduce((n, r) => n + r.weight, 0);
  let roll = Math.random() * total;
  for (const r of tier) if ((roll -= r.weight) < 0) return r;
  return tier[0];
}

export function createDiscovery(opts: DiscoveryOptions) {
  const now = opts.now ?? Date.now;
  const httpOnly = opts.httpOnly ?? process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION === 'true';
  const scheme = httpOnly ? 'http' : 'https';
  let resolveSrv = opts.resolveSrv;
  if (!resolveSrv) {
    const resolver = new Resolver({ timeout: Math.max(1000, opts.timeoutMs), tries: 2 });
    resolveSrv = (name) => resolver.resolveSrv(name);
  }
  // Value: delegated server name, or null for "no usable .well-known" (fetch or parse failed).
  const wellKnown = new LRUCache<string, { delegated: string | null; expires: number }>({ max: CACHE_ENTRIES });
  const inflight = new Map<string, Promise<string | null>>();

  async function fetchWellKnown(hostname: string): Promise<string | null> {
    const t = now();
    try {
      const port = opts.wellKnownPort ?? (httpOnly ? 80 : 443);
      const host = isIPv6(hostname) ? `[${hostname}]` : hostname;
      const res = await safeJson(`${scheme}://${host}:${port}/.well-known/matrix/server`, {
        allow: opts.allow,
        deny: opts.deny,
        timeoutMs: opts.timeoutMs,
        resolve: opts.resolve,
      });
      const server = (res.json as { 'm.server'?: unknown } | null)?.['m.server'];
      if (typeof server !== 'string' || !parseServerName(server)) throw new Error('invalid m.server');
      wellKnown.set(hostname, { delegated: server, expires: t + ttlFrom(res.headers, t) });
      return server;
    } catch {
      // Spec: an invalid or failed .well-known means "skip to SRV on the original name".
      wellKnown.set(hostname, { delegated: null, expires: t + WK_ERROR_MS });
      return null;
    }
  }

  function lookupWellKnown(hostname: string): Promise<string | null> {
    const hit = wellKnown.get(hostname);
    if (hit && hit.expires > now()) return Promise.resolve(hit.delegated);
    // Concurrent resolves of one name share a single fetch.
    let p = inflight.get(hostname);
    if (!p) {
      p = fetchWellKnown(hostname).finally(() => inflight.delete(hostname));
      inflight.set(hostname, p);
    }
    return p;
  }

  async function srv(name: string): Promise<SrvRecord | undefined> {
    try {
      return pickSrv(await resolveSrv!(name));
    } catch {
      return undefined; // NXDOMAIN / no data / resolver failure: fall through to the next step
    }
  }

  const result = (
    serverName: string,
    host: string,
    port: number,
    hostHeader: string,
    tlsServername: string,
  ): ResolvedServer => ({ serverName, host, port, hostHeader, tlsServername, baseUrl: `${scheme}://${hostHeader}` });

  /** Steps 1-2 and the SRV/8448 fallback, applied to the server name or the delegated name. */
  async function fromName(serverName: string, name: string, parsed: ParsedName): Promise<ResolvedServer | null> {
    if (parsed.ip) return result(serverName, parsed.host, parsed.port ?? 8448, name, parsed.host);
    if (parsed.port !== undefined) return result(serverName, parsed.host, parsed.port, name, parsed.host);
    return null;
  }

  async function viaSrv(serverName: string, hostname: string): Promise<ResolvedServer> {
    const rec = (await srv(`_matrix-fed._tcp.${hostname}`)) ?? (await srv(`_matrix._tcp.${hostname}`));
    const target = rec ? rec.name.replace(/\.$/, '') : hostname;
    return result(serverName, target, rec ? rec.port : 8448, hostname, hostname);
  }

  async function resolve(serverName: string): Promise<ResolvedServer> {
    const parsed = parseServerName(serverName);
    if (!parsed) throw new Error(`invalid server name ${JSON.stringify(serverName)}`);
    const direct = await fromName(serverName, serverName, parsed);
    if (direct) return direct;
    const delegated = await lookupWellKnown(parsed.host);
    if (delegated !== null) {
      const d = parseServerName(delegated)!; // validated before caching
      return (await fromName(serverName, delegated, d)) ?? viaSrv(serverName, d.host);
    }
    return viaSrv(serverName, parsed.host);
  }

  return {
    resolve,
    clearCache: (): void => {
      wellKnown.clear();
      inflight.clear();
    },
  };
}
