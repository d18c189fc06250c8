import type { Route } from './services.js';

interface Compiled {
  route: Route;
  segments: string[];
  /** The route's methods, plus HEAD wherever GET is allowed. */
  methods: string[];
}

export type Match =
  | { kind: 'found'; route: Route; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allowed: string[] }
  | { kind: 'not-found' };

/** `/_matrix/media/{r0,v1,v3}/upload` → one pattern per version. */
export function expand(pattern: string): string[] {
  const m = /\{([^}]+)\}/.exec(pattern);
  if (!m) return [pattern];
  return m[1]!
    .split(',')
    .flatMap((alt) => expand(pattern.slice(0, m.index) + alt + pattern.slice(m.index + m[0].length)));
}

const PREFIX_SEGMENTS = 4;
const MAX_SHAPES = 1000;

// Matches paths against the route table, segment by segment. Params are percent-decoded;
// a segment that does not decode simply does not match.
export class Router {
  private readonly compiled: Compiled[] = [];
  private readonly bodyRoutes = new Map<string, Compiled[]>();
  /** Path shape (segment count and first PREFIX_SEGMENTS segments) → the patterns that can
   * match it, in table order. A scan of every pattern was 5% of the 1 KiB download path; the
   * memo is bounded, since shapes come from clients. */
  private readonly byShape = new Map<string, Compiled[]>();

  constructor(routes: Route[]) {
    for (const route of routes) {
      for (const p of route.paths.flatMap(expand)) {
        const methods =
          route.methods.includes('GET') && !route.methods.includes('HEAD') ? [...route.methods, 'HEAD'] : route.methods;
        const c = { route, segments: p.split('/').slice(1), methods };
        this.compiled.push(c);
        if (route.body === 'stream' || route.body === 'small') {
          for (const m of route.methods) {
            const list = this.bodyRoutes.get(m) ?? [];
            list.push(c);
            this.bodyRoutes.set(m, list);
          }
        }
      }
    }
  }

  /** Cheap synchronous check the HTTP layer needs before its first await. */
  wantsBody(method: string, path: string): boolean {
    const segs = path.split('/').slice(1);
    return (this.bodyRoutes.get(method) ?? []).some((c) => matchSegments(c.segments, segs) !== null);
  }

  private candidates(path: string, segs: string[]): Compiled[] {
    // The path up to the slash after its PREFIX_SEGMENTS-th segment, without splitting again.
    let cut = 0;
    for (let n = 0; n <= PREFIX_SEGMENTS && cut !== -1; n++) cut = path.indexOf('/', cut + (n ? 1 : 0));
    const key = `${segs.length}${cut === -1 ? path : path.slice(0, cut)}`;
    let list = this.byShape.get(key);
    if (!list) {
      list = this.compiled.filter(
        (c) =>
          c.segments.length === segs.length &&
          c.segments.slice(0, PREFIX_SEGMENTS).every((p, i) => p.startsWith(':') || p === segs[i]),
      );
      if (this.byShape.size >= MAX_SHAPES) this.byShape.clear();
      this.byShape.set(key, list);
    }
    return list;
  }

  match(method: string, path: string): Match {
    const segs = path.split('/').slice(1);
    let allowed: Set<string> | null = null;
    for (const c of this.candidates(path, segs)) {
      const params = matchSegments(c.segments, segs);
      if (!params) continue;
      if (c.methods.includes(method)) return { kind: 'found', route: c.route, params };
      allowed ??= new Set();
      for (const m of c.methods) allowed.add(m);
    }
    return allowed ? { kind: 'method-not-allowed', allowed: [...allowed] } : { kind: 'not-found' };
  }
}

function matchSegments(pattern: string[], path: string[]): Record<string, string> | null {
  if (pattern.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) {
      let v: string;
      try {
        v = decodeURIComponent(path[i]!);
      } catch {
        return null;
      }
      if (v === '') return null;
      params[p.slice(1)] = v;
    } else if (p !== path[i]) {
      return null;
    }
  }
  return params;
}
