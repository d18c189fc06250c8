// MMR keys that load here (so an MMR config works unchanged) but that media-repo does not act on
// yet. Each entry an operator's file sets is named in one start-up warning, so nobody believes a
// rate limit or a quarantine placeholder is in force when it is not. The rule is "warn whenever
// set", whatever the value: even MMR's default for a key promises behaviour this server does
// not have.
//
// A path names a key or a whole section (every key below it); `[]` stands for any list index.
export const UNBUILT_KEYS: readonly string[] = [
  'plugins',
  'sentry',
  'tasks',
  'pgo',
  'downloads.defaultRangeChunkSizeBytes',
  'urlPreviews.proxyUrl',
  'featureSupport.MSC2448.punch',
];

/** `homeservers[2].name` -> `homeservers[].name`. */
export function normalisePath(path: string): string {
  return path.replace(/\[\d+\]/g, '[]');
}

/** Whether `path` is an unbuilt key or lies inside an unbuilt section. */
export function isUnbuilt(path: string): boolean {
  const p = normalisePath(path);
  return UNBUILT_KEYS.some((k) => p === k || p.startsWith(k + '.') || p.startsWith(k + '['));
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Leaf keys set under an unbuilt entry, relative to it (lists count as one value). */
function leaves(value: unknown, rel: string, out: string[]): void {
  if (value === undefined || value === null) return; // `key:` with no value is "not set"
  if (!isMapping(value)) {
    out.push(rel);
    return;
  }
  for (const [k, v] of Object.entries(value)) leaves(v, rel ? `${rel}.${k}` : k, out);
}

/** Entry -> keys set under it, walking the operator's own document (never the defaults). */
function collect(value: unknown, path: string, found: Map<string, Set<string>>): void {
  if (value === undefined || value === null) return;
  const entry = path && UNBUILT_KEYS.find((k) => k === path);
  if (entry) {
    const keys: string[] = [];
    leaves(value, '', keys);
    if (keys.length === 0) return;
    const set = found.get(entry) ?? new Set<string>();
    for (const k of keys) set.add(k);
    found.set(entry, set);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collect(item, `${path}[]`, found);
  } else if (isMapping(value)) {
    for (const [k, v] of Object.entries(value)) collect(v, path ? `${path}.${k}` : k, found);
  }
}

/** One warning per unbuilt entry the document sets, naming the keys set under a section. */
export function unbuiltWarnings(doc: unknown): string[] {
  const found = new Map<string, Set<string>>();
  collect(doc, '', found);
  return UNBUILT_KEYS.filter((k) => found.has(k)).map((k) => {
    const keys = [...found.get(k)!];
    return keys.length === 1 && keys[0] === ''
      ? `${k}: an MMR setting media-repo does not build yet; accepted, it has no effect`
      : `${k}: MMR settings media-repo does not build yet; accepted, they have no effect (${keys.join(', ')})`;
  });
}
