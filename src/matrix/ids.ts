import { randomBytes } from 'node:crypto';

// Media IDs: 144 random bits as base64url, 24 characters of [A-Za-z0-9_-] (the spec's
// alphabet and what matrix-js-sdk accepts), unguessable so IDs cannot be enumerated.
export function newMediaId(): string {
  return randomBytes(18).toString('base64url');
}

const MEDIA_ID = /^[A-Za-z0-9_-]{1,255}$/;
export function isValidMediaId(id: string): boolean {
  return MEDIA_ID.test(id);
}

// Server names (spec appendix "Server Name"): a DNS name, IPv4 literal or [IPv6] literal,
// with an optional port. Anything else (slashes, dots-only, %-escapes) could reach a path.
const DNS_NAME = /^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const IPV6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;

export function isValidServerName(name: string): boolean {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(name);
  if (!m) return false;
  const host = m[1]!;
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  if (IPV6.test(host)) return true;
  if (IPV4.test(host)) return host.split('.').every((o) => Number(o) <= 255);
  return DNS_NAME.test(host) && !/^[\d.]+$/.test(host);
}
