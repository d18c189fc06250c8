import type { DomainConfig, LoadedConfig } from '../config/schema.js';

/**
 * Picks the homeserver for a request from Host (or X-Forwarded-Host when useForwardedHost):
 * an exact match first, since server names may carry a port (`127.0.0.1:8008`), then the
 * name without its port.
 */
export function resolveHost(cfg: LoadedConfig, headers: Record<string, string>): { name: string; domain: DomainConfig } | { unknown: string } {
  const forwarded = cfg.global.repo.useForwardedHost ? headers['x-forwarded-host'] : undefined;
  const raw = (forwarded ? forwarded.split(',')[0]! : headers['host'] ?? '').trim().toLowerCase();
  const exact = cfg.domains.get(raw);
  if (exact) return { name: raw, domain: exact };
  const noPort = raw.replace(/:\d+$/, '');
  const bare = cfg.domains.get(noPort);
  if (bare) return { name: noPort, domain: bare };
  return { unknown: raw };
}
