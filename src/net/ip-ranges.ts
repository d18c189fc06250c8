// IP address normalisation and CIDR matching for the outbound SSRF guard. Written on node:net
// only (no ipaddr.js) so the parsing is small enough to read: the npm `ip` package and
// `ssrfcheck` both shipped bypasses (0x7f.1, ::fFFf:127.0.0.1, [::ffff:7f00:1]) because they
// matched text instead of bytes. Here every check works on bytes after unwrapping every IPv6
// form that embeds an IPv4 address the kernel or a translator would actually reach.
import { isIPv4, isIPv6 } from 'node:net';

type Bytes = Uint8Array; // 4 bytes (IPv4) or 16 bytes (IPv6)

/** Strips URL brackets and a zone id (fe80::1%eth0): neither changes which host is reached. */
function bare(ip: string): string {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  return pct >= 0 && s.includes(':') ? s.slice(0, pct) : s;
}

/** Strict parse: only the forms node:net accepts (dotted decimal, RFC 4291 IPv6). Legacy
 * forms like 127.1 or 0x7f.1 are rejected here; WHATWG URL parsing already canonicalises them
 * for http(s) hosts, and anything else reaching this point is not an address. */
function toBytes(ip: string): Bytes | null {
  const s = bare(ip);
  if (isIPv4(s)) return Uint8Array.from(s.split('.').map(Number));
  if (!isIPv6(s)) return null;
  const out = new Uint8Array(16);
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const res: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number);
        res.push((a << 8) | b, (c << 8) | d);
      } else res.push(parseInt(g, 16));
    }
    return res;
  };
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

const isZero = (b: Bytes, from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);

/** The IPv4 address an IPv6 address stands for, if it is one of the embedding forms. */
function embeddedV4(b: Bytes): Bytes | null {
  if (b.length !== 16) return null;
  // ::ffff:a.b.c.d (IPv4-mapped: the kernel connects to the IPv4 host).
  if (isZero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12);
  // ::ffff:0:a.b.c.d (SIIT IPv4-translated, RFC 2765): a translator reaches the IPv4 host.
  if (isZero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && isZero(b, 10, 12)) return b.slice(12);
  // 64:ff9b::/96 (NAT64 well-known prefix): the NAT64 gateway reaches the IPv4 host.
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && isZero(b, 4, 12)) return b.slice(12);
  // 2002:AABB:CCDD::/16 (6to4): the relay forwards to the embedded IPv4 host.
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  // ::a.b.c.d (deprecated IPv4-compatible). :: and ::1 are their own addresses, not 0.0.0.x.
  if (isZero(b, 0, 12) && !(isZero(b, 12, 15) && b[15] <= 1)) return b.slice(12);
  return null;
}

function format(b: Bytes): string {
  if (b.length === 4) return b.join('.');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let best = -1,
    bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Every byte form an address must be checked in: itself, plus the embedded IPv4 if any. */
function forms(ip: string): Bytes[] | null {
  const b = toBytes(ip);
  if (!b) return null;
  const v4 = embeddedV4(b);
  return v4 ? [b, v4] : [b];
}

/**
 * Normalises an address before any check. IPv6 forms that embed an IPv4 address (IPv4-mapped
 * ::ffff:a.b.c.d / ::ffff:7f00:1, SIIT ::ffff:0:a.b.c.d, 6to4 2002:AABB:CCDD::, NAT64
 * 64:ff9b::a.b.c.d, IPv4-compatible ::a.b.c.d) become that IPv4 address in dotted form; other
 * addresses become canonical text (dotted IPv4, RFC 5952 IPv6). Accepts [brackets] and zone ids.
 * Throws for anything that is not an IP address.
 */
export function normaliseIp(ip: string): string {
  const f = forms(ip);
  if (!f) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  return format(f[f.length - 1]);
}

interface Range {
  net: Bytes;
  bits: number;
}

function inRange(addr: Bytes, r: Range): boolean {
  if (addr.length !== r.net.length) return false;
  const whole = r.bits >> 3,
    rest = r.bits & 7;
  for (let i = 0; i < whole; i++) if (addr[i] !== r.net[i]) return false;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[whole] & mask) === (r.net[whole] & mask);
}

export class IpRangeList {
  private constructor(private readonly ranges: readonly Range[]) {}

  /** Parses "addr/bits" (or a bare address, meaning /32 or /128). Throws naming the bad entry. */
  static parse(cidrs: readonly string[]): IpRangeList {
    const ranges = cidrs.map((entry): Range => {
      const [addr, bitsText, extra] = entry.trim().split('/');
      const net = toBytes(addr);
      const max = net ? net.length * 8 : 0;
      const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
      if (!net || extra !== undefined || addr.startsWith('[') || !(bits >= 0 && bits <= max)) {
        throw new Error(`invalid IP range ${JSON.stringify(entry)}: expected address/prefix-length`);
      }
      return { net, bits };
    });
    return new IpRangeList(ranges);
  }

  get size(): number {
    return this.ranges.length;
  }

  /** How specific the closest range holding the address (in any of its forms) is, as the
   * number of host bits it leaves open (0 = the exact address); null when none holds it. */
  closestMatch(ip: string): number | null {
    const f = forms(ip);
    if (!f) return null;
    let best: number | null = null;
    for (const b of f) {
      for (const r of this.ranges) {
        if (!inRange(b, r)) continue;
        const open = b.length * 8 - r.bits;
        if (best === null || open < best) best = open;
      }
    }
    return best;
  }

  /** True when the address, or the IPv4 address it embeds (mapped, 6to4, NAT64, ...), lies in
   * any range: checking both forms means neither a deny nor an allow entry can be sidestepped
   * by spelling the address differently. Non-addresses are never contained. */
  contains(ip: string): boolean {
    const f = forms(ip);
    return !!f && f.some((b) => this.ranges.some((r) => inRange(b, r)));
  }
}

/** IANA special-purpose blocks (RFC 6890 registries), which no federation peer or previewed
 * URL may resolve to. Includes the translation prefixes (::ffff:0:0/96, 64:ff9b::/96, 2002::/16)
 * outright: an operator on a NAT64-only network must override this list deliberately. */
export const DEFAULT_DENIED_RANGES: readonly string[] = Object.freeze([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '255.255.255.255/32',
  '::/128',
  '::1/128',
  '::ffff:0:0/96',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]);

/**
 * Whether an address may be dialled. Where entries of both lists hold it, the more specific one
 * decides, and a tie allows (the operator listed that very range to allow it): tests allow
 * 127.0.0.1/32 inside the denied 127.0.0.0/8, while MMR configs that carry
 * `allowedNetworks: [0.0.0.0/0]` cannot thereby re-open loopback. An address
 * that neither list holds is allowed while a deny list is in force, and refused when only an
 * allow list is given (an allow-only list is exclusive). Non-addresses are always refused.
 */
export function addressAllowed(ip: string, allow: IpRangeList, deny: IpRangeList): boolean {
  if (!forms(ip)) return false;
  const a = allow.closestMatch(ip);
  const d = deny.closestMatch(ip);
  if (a !== null && (d === null || a <= d)) return true;
  if (d !== null) return false;
  return !(deny.size === 0 && allow.size > 0);
}
