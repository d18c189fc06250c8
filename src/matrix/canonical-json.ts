// Matrix Canonical JSON (spec appendix "Signing JSON"): the shortest UTF-8 JSON, object keys
// sorted by Unicode codepoint, integers only in [-(2**53)+1, (2**53)-1], no whitespace.
// Everything signed (requests, server keys, events) goes through here, so anything that
// another implementation could encode differently is refused rather than guessed:
//  - non-integers, NaN/Infinity, unsafe integers, bigint, functions, symbols: TypeError;
//  - objects other than plain objects and arrays (Date, Map, Buffer, class instances), since
//    JSON.stringify's toJSON conversions are not part of the spec: TypeError;
//  - strings with lone surrogates (they have no UTF-8 encoding): TypeError;
//  - cycles: TypeError.
// Properties whose value is undefined are omitted, as JSON.stringify does, so an optional
// field left undefined signs the same as one left out; undefined anywhere else is refused
// because JSON.stringify would turn it into null in arrays and into nothing at the top.
// -0 encodes as 0, as the spec's example requires (it arrives as -0 from JSON.parse("-0")).

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function canonicalJson(value: unknown): string {
  return encode(value, new Set());
}

function encode(value: unknown, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value))
        throw new TypeError(`canonical JSON: ${value} is not an integer in the safe range`);
      return Object.is(value, -0) ? '0' : String(value);
    case 'object':
      if (value === null) return 'null';
      return encodeContainer(value, ancestors);
    default:
      throw new TypeError(`canonical JSON: cannot encode a ${typeof value}`);
  }
}

// JSON.stringify's string escaping is exactly the spec grammar for well-formed strings:
// \" \\ \b \f \n \r \t, other controls as lowercase \u00XX, everything else (including
// U+007F and non-ASCII) as itself.
function encodeString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new TypeError('canonical JSON: string has a lone surrogate');
  return JSON.stringify(s);
}

function encodeContainer(value: object, ancestors: Set<object>): string {
  if (ancestors.has(value)) throw new TypeError('canonical JSON: cyclic structure');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      return `[${value
        .map((v) => {
          if (v === undefined) throw new TypeError('canonical JSON: undefined in an array');
          return encode(v, ancestors);
        })
        .join(',')}]`;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`canonical JSON: cannot encode a ${proto?.constructor?.name ?? 'non-plain'} object`);
    }
    const rec = value as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort(compareCodepoints);
    return `{${keys.map((k) => `${encodeString(k)}:${encode(rec[k], ancestors)}`).join(',')}}`;
  } finally {
    ancestors.delete(value);
  }
}

/**
 * Orders strings by Unicode codepoint (the same order as their UTF-8 bytes). JavaScript's
 * default sort compares UTF-16 code units, which puts U+10000 and above (surrogate pairs,
 * 0xD800..) before U+E000..U+FFFF; comparing codePointAt at the first differing unit fixes it.
 */
export function compareCodepoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a.charCodeAt(i) !== b.charCodeAt(i)) return a.codePointAt(i)! - b.codePointAt(i)!;
  }
  return a.length - b.length;
}
