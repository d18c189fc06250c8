import type { DomainConfig, LoadedConfig } from '../config/schema.js';

/**
 * Picks the homeserver for a request from Host (or X-Forwarded-Host when useForwardedHost):
 * an exact match first, since server names may carry a port (`127.0.0.1:8008`), then the
 * name without its port, then (embedded defaults only) a loopback alias of it.
 */
const lowerIndex = new WeakMap<LoadedConfig, Map<string, string>>();

/** Server names are matched case-insensitively (DNS names are); configured spelling is kept. */
function canonical(cfg: LoadedConfig, host: string): string | undefined {
  let idx = lowerIndex.get(cfg);
  if (!idx) {
    idx = new Map([...cfg.domains.keys()].map((k) => [k.toLowerCase(), k]));
    lowerIndex.set(cfg, idx);
  }
  return idx.get(host);
}

export function resolveHost(
  cfg: LoadedConfig,
  headers: Record<string, string>,
): { name: string; domain: DomainConfig } | { unknown: string } {
  const forwarded = cfg.global.repo.useForwardedHost ? headers['x-forwarded-host'] : undefined;
  const raw = (forwarded ? forwarded.split(',')[0]! : (headers['host'] ?? '')).trim().toLowerCase();
  const exact = canonical(cfg, raw);
  if (exact) return { name: exact, domain: cfg.domains.get(exact)! };
  const withoutPort = raw.replace(/:\d+$/, '');
  const bare = canonical(cfg, withoutPort) ?? cfg.hostAliases?.get(withoutPort);
  if (bare) return { name: bare, domain: cfg.domains.get(bare)! };
  return { unknown: raw };
}
