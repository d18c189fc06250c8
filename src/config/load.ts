// Reads the configuration from a file, a directory of YAML files (MMR's -config DIR), or, with
// no path at all, embedded defaults so that a first start needs no file.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import yaml from 'js-yaml';
import { defaultConfig } from './defaults.js';
import { buildDomains, isDomainDoc, type DomainFile } from './merge.js';
import type { LoadedConfig } from './schema.js';
import { ConfigError, deepMerge, validateConfigWithWarnings } from './validate.js';

/** Where the embedded-defaults start keeps its generated shared secret, relative to cwd. */
export const EMBEDDED_SECRET_FILE = 'data/shared-secret';
/** The homeserver the embedded defaults serve, and the loopback names that reach it too. */
const EMBEDDED_HOMESERVER = 'localhost';
const LOOPBACK_ALIASES = ['127.0.0.1', '[::1]'];

/** The file datastore of the no-config start, also used by a config that names none. */
export function defaultDatastore(cwd: string): Record<string, unknown> {
  return { id: 'default', type: 'file', forKinds: ['all'], opts: { path: resolve(cwd, 'data/media') } };
}

export interface LoadOptions {
  /** Base for relative paths; process.cwd() by default. */
  cwd?: string;
}

async function parseFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as Error).message})`);
  }
  try {
    return yaml.load(text, { filename: file });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      throw new ConfigError(`${file} line ${e.mark.line + 1}: invalid YAML: ${e.reason}`);
    }
    throw e;
  }
}

/** The operator's secret must survive restarts (their admin tools hold it) and stay private. */
async function embeddedSecret(cwd: string): Promise<string> {
  const file = resolve(cwd, EMBEDDED_SECRET_FILE);
  const existing = await readFile(file, 'utf8').catch(() => '');
  if (existing.trim() !== '') return existing.trim();
  const token = randomBytes(32).toString('base64url');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, token + '\n', { mode: 0o600 });
  await chmod(file, 0o600); // mode on writeFile applies only when the file is created
  return token;
}

async function embeddedDefaults(cwd: string): Promise<LoadedConfig> {
  const raw = {
    database: { embeddedPath: resolve(cwd, defaultConfig().database.embeddedPath) },
    homeservers: [{ name: EMBEDDED_HOMESERVER, csApi: 'http://localhost:8008' }],
    datastores: [defaultDatastore(cwd)],
    sharedSecretAuth: { enabled: true, token: await embeddedSecret(cwd) },
  };
  const { config, warnings } = validateConfigWithWarnings(raw);
  const { global, domains } = buildDomains(config, []);
  // The README's first start is "open http://127.0.0.1:8000": a browser or curl then sends
  // Host: 127.0.0.1:8000 (or [::1]), which names the same loopback server as "localhost".
  // A config file names its homeservers itself and gets no aliases.
  const hostAliases = new Map(LOOPBACK_ALIASES.map((a) => [a, EMBEDDED_HOMESERVER]));
  return { global, domains, files: [], warnings, hostAliases };
}

/** Directory mode: every *.yaml / *.yml file, not recursive, in code-point order. */
async function listYaml(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => /\.ya?ml$/i.test(n)).sort();
  return names.map((n) => join(dir, n));
}

export async function loadConfig(path: string | undefined, opts: LoadOptions = {}): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  if (path === undefined) return embeddedDefaults(cwd);
  const target = resolve(cwd, path);
  const info = await stat(target).catch((e: Error) => {
    throw new ConfigError(`${target}: cannot read config (${e.message})`);
  });
  const files = info.isDirectory() ? await listYaml(target) : [target];
  if (files.length === 0) throw new ConfigError(`${target}: no .yaml or .yml files in this directory`);

  let main: unknown = {};
  const domainFiles: DomainFile[] = [];
  for (const file of files) {
    const doc = await parseFile(file);
    if (isDomainDoc(doc)) {
      if (!info.isDirectory()) {
        throw new ConfigError(
          `${file}: a per-domain file (top-level homeserver key) must sit in a config directory beside the main file`,
        );
      }
      domainFiles.push({ file, doc });
    } else if (doc !== undefined && doc !== null) {
      if (typeof doc !== 'object' || Array.isArray(doc))
        throw new ConfigError(`${file}: expected a mapping of sections at the top level`);
      main = deepMerge(main, doc); // later files win, key by key
    }
  }

  // The sample says every value shown is the default, datastores included: a file that names
  // none stores media where the no-config start does, and says so.
  const datastoreNote: string[] = [];
  const given = main as Record<string, unknown>;
  if (given.datastores === undefined || given.datastores === null) {
    const ds = defaultDatastore(cwd);
    main = { ...given, datastores: [ds] };
    datastoreNote.push(
      `datastores: none configured; media is stored in the file datastore "default" at ${(ds.opts as { path: string }).path} (as with no config file)`,
    );
  }

  let validated: ReturnType<typeof validateConfigWithWarnings>;
  try {
    validated = validateConfigWithWarnings(main);
  } catch (e) {
    // Name the file (or, for a directory, the directory: any of its files may have set the key).
    if (e instanceof ConfigError) throw new ConfigError(`${target}: ${e.message}`);
    throw e;
  }
  const warnings = [...datastoreNote, ...validated.warnings];
  const { global, domains } = buildDomains(validated.config, domainFiles, validated.warnings, warnings);
  return { global, domains, files, warnings };
}
