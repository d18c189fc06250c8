// Per-domain configuration, MMR style: a YAML file with a top-level `homeserver: <name>` key
// overrides some sections for that one homeserver. Every homeserver gets a DomainConfig: the
// global sections with its file's overrides deep-merged on top, validated like the globals.
import { DOMAIN_HOMESERVER_KEYS, DOMAIN_OVERRIDABLE } from './schema.js';
import type { Config, DomainConfig, HomeserverConfig } from './schema.js';
import { ConfigError, checkHomeserver, checkServerName, deepMerge, isObject, validateSection } from './validate.js';
import { unbuiltWarnings } from './unbuilt.js';

export interface DomainFile {
  file: string;
  doc: Record<string, unknown>;
}

/** A per-domain file is recognised by its top-level `homeserver` key (MMR's rule). */
export function isDomainDoc(doc: unknown): doc is Record<string, unknown> {
  return isObject(doc) && 'homeserver' in doc;
}

const ALLOWED = new Set<string>(['homeserver', ...DOMAIN_OVERRIDABLE, ...DOMAIN_HOMESERVER_KEYS]);
// Worker pools and expiry sweeps are process-wide; one domain cannot size or schedule them.
const GLOBAL_ONLY_SECTIONS = ['downloads', 'thumbnails', 'urlPreviews'];
const GLOBAL_ONLY_KEYS = ['numWorkers', 'expireAfterDays', 'failureCacheMinutes'];

/** Runs fn, prefixing any ConfigError with the file it came from. */
function inFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}

function checkKeys({ file, doc }: DomainFile): void {
  for (const k of Object.keys(doc)) {
    if (!ALLOWED.has(k)) {
      throw new ConfigError(
        `${file}: "${k}" cannot be set in a per-domain file; allowed keys are ${[...ALLOWED].join(', ')}`,
      );
    }
  }
  for (const s of GLOBAL_ONLY_SECTIONS) {
    const sec = doc[s];
    if (!isObject(sec)) continue;
    for (const k of GLOBAL_ONLY_KEYS) {
      if (k in sec) throw new ConfigError(`${file}: ${s}.${k} is process-wide and cannot be set in a per-domain file`);
    }
  }
}

function domainHomeserver(global: Config, { file, doc }: DomainFile): HomeserverConfig {
  return inFile(file, () => {
    const name = checkServerName(doc.homeserver, 'homeserver', []) as string;
    const listed = global.homeservers.find((h) => h.name.toLowerCase() === name.toLowerCase());
    const top: Record<string, unknown> = {};
    for (const k of DOMAIN_HOMESERVER_KEYS) if (doc[k] !== undefined) top[k] = doc[k];
    // An unlisted name adds a homeserver, so csApi must come from this file (the check says so).
    const base = listed ?? { name };
    // Path '' so errors name the file's own top-level keys (csApi, backoffAt...).
    return checkHomeserver(deepMerge(base, top), '', []) as HomeserverConfig;
  });
}

function domainSections(
  global: Config,
  globalWarnings: Set<string>,
  df: DomainFile | undefined,
  warnings: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of DOMAIN_OVERRIDABLE) {
    const override = df?.doc[name];
    if (override === undefined || override === null) {
      if (global[name] !== undefined) out[name] = global[name];
      continue;
    }
    const local: string[] = [];
    out[name] = inFile(df!.file, () => validateSection(name, deepMerge(global[name], override), local));
    // Keys the global file already drew a warning for would otherwise be reported once per domain.
    for (const w of local) if (!globalWarnings.has(w)) warnings.push(`${df!.file}: ${w}`);
  }
  return out;
}

/** A per-domain file's keys as the main file spells them (its csApi, adminApiKind... belong
 * under homeservers[]), for the unbuilt-key check. */
function asMainDoc(doc: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const hs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if ((DOMAIN_HOMESERVER_KEYS as readonly string[]).includes(k)) hs[k] = v;
    else if (k !== 'homeserver') out[k] = v;
  }
  return { ...out, homeservers: [hs] };
}

/** Unbuilt keys a per-domain file sets, each named once: not again if the main file did. */
function domainUnbuiltWarnings(files: DomainFile[], globalWarnings: string[], warnings: string[]): void {
  const entry = (w: string) => w.slice(0, w.indexOf(':'));
  const named = new Set(globalWarnings.map(entry));
  for (const df of files) {
    for (const w of unbuiltWarnings(asMainDoc(df.doc))) {
      if (named.has(entry(w))) continue;
      named.add(entry(w));
      warnings.push(`${df.file}: ${w}`);
    }
  }
}

/**
 * Builds one DomainConfig per homeserver (keyed by the name as configured). The returned global's
 * homeservers list carries each file's homeserver fields too, and gains the homeservers named only
 * by a per-domain file, so code that walks the list sees what requests see.
 */
export function buildDomains(
  global: Config,
  files: DomainFile[],
  globalWarnings: string[] = [],
  warnings: string[] = [],
): { global: Config; domains: Map<string, DomainConfig> } {
  const byName = new Map<string, DomainFile>();
  const fromFiles = new Map<string, HomeserverConfig>();
  for (const df of files) {
    checkKeys(df);
    const hs = domainHomeserver(global, df);
    const key = hs.name.toLowerCase();
    const other = byName.get(key);
    if (other) throw new ConfigError(`${df.file}: homeserver ${hs.name} already has a per-domain file (${other.file})`);
    byName.set(key, df);
    fromFiles.set(key, hs);
  }
  const homeservers = global.homeservers.map((h) => fromFiles.get(h.name.toLowerCase()) ?? h);
  for (const [key, hs] of fromFiles) {
    if (!homeservers.some((h) => h.name.toLowerCase() === key)) homeservers.push(hs);
  }
  domainUnbuiltWarnings(files, globalWarnings, warnings);
  const seen = new Set(globalWarnings);
  const domains = new Map<string, DomainConfig>();
  for (const homeserver of homeservers) {
    const sections = domainSections(global, seen, byName.get(homeserver.name.toLowerCase()), warnings);
    domains.set(homeserver.name, { ...sections, homeserver } as DomainConfig);
  }
  return { global: { ...global, homeservers }, domains };
}
