// The building blocks of config validation: one Check per kind of value, each failing with
// a message that names the key path, what was expected and what arrived. validate.ts
// composes them into the sections of the config.

import { IpRangeList } from '../net/ip-ranges.js';
import { MediaRepoError } from '../errors.js';
import { isUnbuilt } from './unbuilt.js';

export class ConfigError extends MediaRepoError<'MR_ERR_CONFIG'> {
  constructor(message: string) {
    super('MR_ERR_CONFIG', message);
    this.name = 'ConfigError';
  }
}

/** Checks one value at `path`; returns it with defaults filled in, or throws ConfigError. */
export type Check = (value: unknown, path: string, warnings: string[]) => unknown;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Objects merge recursively; arrays and scalars replace. A YAML `key:` with no value (null)
 * means "not set" here, so an emptied key keeps its default instead of failing validation. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined || over === null) return base;
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k !== '__proto__') out[k] = deepMerge(base[k], v);
  }
  return out;
}

export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

export function fail(path: string, expected: string, got: unknown): never {
  throw new ConfigError(`${path}: expected ${expected}, got ${show(got)}`);
}

export const str =
  (nonEmpty = false): Check =>
  (v, p) =>
    typeof v === 'string' && (!nonEmpty || v !== '') ? v : fail(p, nonEmpty ? 'a non-empty string' : 'a string', v);
export const bool: Check = (v, p) => (typeof v === 'boolean' ? v : fail(p, 'true or false', v));
export const oneOf =
  (...allowed: string[]): Check =>
  (v, p) =>
    typeof v === 'string' && allowed.includes(v) ? v : fail(p, `one of ${allowed.join(', ')}`, v);
export const mapping: Check = (v, p) => (isObject(v) ? v : fail(p, 'a mapping', v));

export function int(min?: number, max?: number): Check {
  const what =
    min !== undefined && max !== undefined
      ? `an integer from ${min} to ${max}`
      : min !== undefined
        ? `an integer of at least ${min}`
        : 'an integer';
  return (v, p) =>
    typeof v === 'number' && Number.isInteger(v) && v >= (min ?? -Infinity) && v <= (max ?? Infinity)
      ? v
      : fail(p, what, v);
}

/** MMR's host:port, or a redis:// / rediss:// URL (for a password or TLS). MMR's sample writes
 * ":7000": Go dials the local system for an empty host, so that becomes 127.0.0.1:7000. */
export const redisAddr: Check = (v, p) => {
  if (typeof v === 'string' && /^rediss?:\/\/[^/\s]+/.test(v)) return v;
  if (typeof v === 'string' && /^:\d{1,5}$/.test(v) && Number(v.slice(1)) >= 1 && Number(v.slice(1)) <= 65535)
    return `127.0.0.1${v}`;
  const m = typeof v === 'string' ? /^(\[[0-9a-fA-F:]+\]|[^:\s/]+):(\d{1,5})$/.exec(v) : null;
  return m && Number(m[2]) >= 1 && Number(m[2]) <= 65535 ? v : fail(p, 'host:port or a redis:// URL', v);
};
export const num: Check = (v, p) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(p, 'a number', v));
/** A duration in seconds, fractions allowed (tests stop in a fraction of a second). */
export const seconds =
  (max: number): Check =>
  (v, p) =>
    typeof v === 'number' && v >= 0 && v <= max ? v : fail(p, `a number of seconds from 0 to ${max}`, v);
export const fraction: Check = (v, p) =>
  typeof v === 'number' && v >= 0 && v <= 1 ? v : fail(p, 'a number from 0 to 1', v);

export const cidr: Check = (v, p) => {
  try {
    if (typeof v === 'string') {
      IpRangeList.parse([v]);
      return v;
    }
  } catch {
    /* reported below */
  }
  return fail(p, 'an IPv4 or IPv6 CIDR like 10.0.0.0/8 or fc00::/7', v);
};

export const listOf =
  (each: Check): Check =>
  (v, p, w) =>
    Array.isArray(v) ? v.map((x, i) => each(x, `${p}[${i}]`, w)) : fail(p, 'a list', v);

/** A mapping with known keys. Unknown keys are kept (MMR files carry keys we do not implement
 * yet) but reported, since a typo would otherwise silently fall back to a default. */
export function section(spec: Record<string, Check>, defaults: Record<string, unknown> = {}): Check {
  return (v, p, w) => {
    const given = mapping(v, p, w) as Record<string, unknown>;
    const out: Record<string, unknown> = { ...given };
    for (const k of Object.keys(given)) {
      const path = `${p ? p + '.' : ''}${k}`;
      // Unbuilt MMR keys get their own warning (unbuilt.ts), not the typo one.
      if (!(k in spec) && !isUnbuilt(path)) w.push(`${path}: unknown key, ignored`);
    }
    for (const [k, check] of Object.entries(spec)) {
      out[k] = check(given[k] ?? structuredClone(defaults[k]), p ? `${p}.${k}` : k, w);
    }
    return out;
  };
}

export function unique<T>(list: T[], key: keyof T, path: string, norm = (s: string) => s): void {
  const seen = new Map<string, number>();
  list.forEach((item, i) => {
    const name = norm(String(item[key]));
    const first = seen.get(name);
    if (first !== undefined)
      fail(`${path}[${i}].${String(key)}`, `a unique ${String(key)} (${path}[${first}] already uses it)`, item[key]);
    seen.set(name, i);
  });
}

// Matrix spec appendix "Server Name": hostname (DNS name or IPv4) or [IPv6], optional :port.
export const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;
export const checkServerName: Check = (v, p) =>
  typeof v === 'string' && SERVER_NAME.test(v)
    ? v
    : fail(p, 'a Matrix server name (hostname, IPv4 or [IPv6], optional :port)', v);

export const httpUrl: Check = (v, p) => {
  let ok = false;
  try {
    ok = typeof v === 'string' && /^https?:$/.test(new URL(v).protocol);
  } catch {
    /* not a URL */
  }
  return ok ? v : fail(p, 'an http(s) URL', v);
};

export const regex: Check = (v, p) => {
  if (typeof v !== 'string') fail(p, 'a regular expression string', v);
  try {
    new RegExp(v);
  } catch (e) {
    fail(p, `a valid regular expression (${(e as Error).message})`, v);
  }
  return v;
};
