// Config: flags, defaults, validation messages, directory and per-domain merging, embedded
// defaults and the sample file.
import t from 'tap';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { parseCliArgs, resolveConfigPath } from '../src/config/args.js';
import { defaultConfig } from '../src/config/defaults.js';
import { EMBEDDED_SECRET_FILE, loadConfig } from '../src/config/load.js';
import { ConfigError, validateConfig, validateConfigWithWarnings } from '../src/config/validate.js';
import { isUnbuilt } from '../src/config/unbuilt.js';

const root = new URL('../..', import.meta.url).pathname; // dist/test -> repo root
const DS = [{ type: 'file', id: 'local', opts: { path: '/tmp/m' } }];
const HS = [{ name: 'example.org', csApi: 'https://example.org' }];

function tempDir(t: { teardown(fn: () => void): unknown }, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

t.test('config path flags and REPO_CONFIG', async (t) => {
  for (const argv of [
    ['-config', 'a.yaml'],
    ['--config', 'a.yaml'],
    ['-config=a.yaml'],
    ['--config=a.yaml'],
    ['migrate', '--config', 'a.yaml'],
  ]) {
    t.equal(resolveConfigPath(argv, { REPO_CONFIG: 'env.yaml' }), 'a.yaml', argv.join(' '));
  }
  t.equal(resolveConfigPath([], { REPO_CONFIG: 'env.yaml' }), 'env.yaml');
  t.equal(resolveConfigPath([], {}), undefined);
  t.same(parseCliArgs([], {}), { command: 'serve' });
  t.same(parseCliArgs(['migrate', '-config', 'c'], {}), { command: 'migrate', configPath: 'c' });
  t.equal(parseCliArgs(['--version'], {}).command, 'version');
  t.equal(parseCliArgs(['-version'], {}).command, 'version');
  t.equal(parseCliArgs(['--help'], {}).command, 'help');
  t.match(parseCliArgs(['--bogus'], {}), { command: 'help', error: /unknown flag --bogus/ });
  t.match(parseCliArgs(['-config'], {}), { command: 'help', error: /-config needs a path/ });
  t.match(parseCliArgs(['frobnicate'], {}), { command: 'help', error: /unknown command frobnicate/ });
});

t.test('defaults fill every key the file leaves out', async (t) => {
  const c = validateConfig({ homeservers: [{ name: 'example.org:8448', csApi: 'http://hs:8008' }], datastores: DS });
  t.same(c.repo, defaultConfig().repo);
  t.same(c.uploads, defaultConfig().uploads);
  t.same(c.homeservers[0], {
    name: 'example.org:8448',
    csApi: 'http://hs:8008',
    backoffAt: 10,
    adminApiKind: 'matrix',
    signingKeyPath: '',
  });
  t.same(c.datastores[0], { type: 'file', id: 'local', enabled: true, forKinds: ['all'], opts: { path: '/tmp/m' } });
  const partial = validateConfig({ repo: { port: 9000 }, database: { pool: { maxConnections: 3 } }, datastores: DS });
  t.equal(partial.repo.port, 9000);
  t.equal(partial.repo.bindAddress, '127.0.0.1', 'sibling keys keep their defaults');
  t.same(partial.database.pool, { maxConnections: 3, maxIdleConnections: 5 });
});

t.test('an MMR-style file loads; unknown keys warn, unknown sections are kept', async (t) => {
  const dir = tempDir(t, {
    'media-repo.yaml': `
repo:
  bindAddress: '0.0.0.0'
  port: 8000
  logDirectory: '-'
database:
  postgres: "postgres://media:pw@localhost/media?sslmode=disable"
  pool: { maxConnections: 10, maxIdleConnections: 2 }
homeservers:
  - name: example.org
    csApi: "https://matrix.example.org/"
    backoffAt: 5
    adminApiKind: synapse
  - name: "[::1]:8448"
    csApi: "http://[::1]:8008"
admins: ["@admin:example.org"]
accessTokens:
  maxCacheTimeSeconds: 30
  useLocalAppserviceConfig: true
  appservices:
    - id: bridge
      asToken: secret
      senderUserId: "@bridge:example.org"
      userNamespaces: [{ regex: "@bridge_.+:example.org" }]
datastores:
  - type: file
    id: fs1
    forKinds: ["thumbnails", "remote_media"]
    opts: { path: /var/media }
  - type: s3
    id: s3
    enabled: false
    forKinds: []
    opts: { endpoint: s3.example.org, bucketName: media, accessKeyId: k, accessSecret: s, ssl: true }
downloads:
  maxBytes: 104857600
  cacheHitsPerMinute: 5
thumbnails:
  maxSourceBytes: 10485760
  sizes: [{ width: 32, height: 32 }]
`,
  });
  const loaded = await loadConfig(join(dir, 'media-repo.yaml'));
  t.equal(loaded.global.repo.bindAddress, '0.0.0.0');
  t.equal(loaded.global.homeservers[0]!.adminApiKind, 'synapse');
  t.equal(loaded.global.homeservers[1]!.backoffAt, 10);
  t.same(loaded.global.datastores[1]!.forKinds, []);
  t.same(
    loaded.global.thumbnails,
    { ...defaultConfig().thumbnails, maxSourceBytes: 10485760, sizes: [{ width: 32, height: 32 }] },
    'given keys over the defaults',
  );
  t.same(loaded.warnings, ['downloads.cacheHitsPerMinute: unknown key, ignored']);
  t.same([...loaded.domains.keys()], ['example.org', '[::1]:8448']);
  t.same(loaded.files, [join(dir, 'media-repo.yaml')]);
  t.same(validateConfigWithWarnings({ datastores: DS, foo: 1 }).warnings, [
    'foo: unknown top-level section, kept as given',
  ]);
});

t.test('errors name the key path, the value and what was expected', async (t) => {
  const cases: [unknown, string | RegExp][] = [
    [{ repo: { port: 'abc' } }, 'repo.port: expected an integer from 0 to 65535, got "abc"'],
    [{ repo: { port: 70000 } }, 'repo.port: expected an integer from 0 to 65535, got 70000'],
    [
      { repo: { logLevel: 'loud' } },
      'repo.logLevel: expected one of panic, fatal, error, warn, info, debug, trace, got "loud"',
    ],
    [{ repo: { jsonLogs: 'yes' } }, 'repo.jsonLogs: expected true or false, got "yes"'],
    [{ repo: 5 }, 'repo: expected a mapping, got 5'],
    [
      { datastores: [DS[0], { type: 'file', id: 'b', forKinds: ['foo'], opts: { path: 'x' } }] },
      'datastores[1].forKinds[0]: expected one of all, local_media, remote_media, thumbnails, archives, got "foo"',
    ],
    [{ datastores: [{ type: 'ftp', id: 'a' }] }, 'datastores[0].type: expected one of file, s3, got "ftp"'],
    [
      { datastores: [{ type: 'file', id: 'a', opts: {} }] },
      'datastores[0].opts.path: expected a non-empty string, got nothing',
    ],
    [
      { datastores: [{ type: 's3', id: 'a', opts: { endpoint: 'x' } }] },
      'datastores[0].opts.bucketName: expected a non-empty string, got nothing',
    ],
    [
      { datastores: [{ type: 's3', id: 'a', opts: { endpoint: 'https://s3.example.org/media', bucketName: 'm' } }] },
      'datastores[0].opts.endpoint: expected a host[:port], or an http(s):// URL without a path, got "https://s3.example.org/media"',
    ],
    [
      { datastores: [{ type: 's3', id: 'a', opts: { endpoint: 'x', bucketName: 'm', ssl: 'yes' } }] },
      'datastores[0].opts.ssl: expected true or false, got "yes"',
    ],
    [
      { datastores: [{ type: 's3', id: 'a', opts: { endpoint: 'x', bucketName: 'm', prefixLength: 65 } }] },
      'datastores[0].opts.prefixLength: expected an integer from 0 to 64, got 65',
    ],
    [
      {
        datastores: [
          { type: 's3', id: 'a', opts: { endpoint: 'x', bucketName: 'm', publicBaseUrl: 'cdn.example.org' } },
        ],
      },
      'datastores[0].opts.publicBaseUrl: expected an http(s) URL, got "cdn.example.org"',
    ],
    [
      { datastores: [{ type: 's3', id: 'a', opts: { endpoint: 'x', bucketName: 'm', timeoutSeconds: 0 } }] },
      'datastores[0].opts.timeoutSeconds: expected an integer from 1 to 3600, got 0',
    ],
    [
      { datastores: [{ type: 's3', id: 'a', opts: { endpoint: 'x', bucketName: 'm', multipartUploads: false } }] },
      'datastores[0].opts.tempPath: expected a directory to spool uploads in when multipartUploads is false, got ""',
    ],
    [
      { datastores: [DS[0], DS[0]] },
      'datastores[1].id: expected a unique id (datastores[0] already uses it), got "local"',
    ],
    [{ datastores: [] }, 'datastores: expected at least one enabled datastore, got none'],
    [
      { datastores: [{ ...DS[0], enabled: false }] },
      'datastores: expected at least one enabled datastore, got 1 datastore(s), none enabled',
    ],
    [
      { homeservers: [{ name: 'bad name!', csApi: 'http://x' }] },
      'homeservers[0].name: expected a Matrix server name (hostname, IPv4 or [IPv6], optional :port), got "bad name!"',
    ],
    [
      { homeservers: [{ name: 'a.org', csApi: 'ftp://a.org' }] },
      'homeservers[0].csApi: expected an http(s) URL, got "ftp://a.org"',
    ],
    [{ homeservers: [{ name: 'a.org' }] }, 'homeservers[0].csApi: expected an http(s) URL, got nothing'],
    [
      { homeservers: [{ name: 'a.org', csApi: 'http://a', adminApiKind: 7 }] },
      'homeservers[0].adminApiKind: expected a string, got 7',
    ],
    [
      { homeservers: [HS[0], { ...HS[0], name: 'EXAMPLE.org' }] },
      'homeservers[1].name: expected a unique name (homeservers[0] already uses it), got "EXAMPLE.org"',
    ],
    [{ uploads: { maxBytes: 1.5 } }, 'uploads.maxBytes: expected an integer, got 1.5'],
    [{ uploads: { reportedMaxBytes: -2 } }, 'uploads.reportedMaxBytes: expected an integer of at least -1, got -2'],
    [{ admins: ['@a:b', 7] }, 'admins[1]: expected a non-empty string, got 7'],
    [
      { downloads: { cache: { minDownloads: 0 } } },
      'downloads.cache.minDownloads: expected an integer of at least 1, got 0',
    ],
    [{ downloads: { cache: { enabled: 'yes' } } }, 'downloads.cache.enabled: expected true or false, got "yes"'],
    [
      { sharedSecretAuth: { enabled: true } },
      'sharedSecretAuth.token: expected a secret of your own when sharedSecretAuth is enabled, got "ReplaceMe"',
    ],
    [
      {
        accessTokens: {
          appservices: [{ id: 'a', asToken: 't', senderUserId: '@a:b', userNamespaces: [{ regex: '(' }] }],
        },
      },
      /^accessTokens\.appservices\[0\]\.userNamespaces\[0\]\.regex: expected a valid regular expression \(.+\), got "\("$/,
    ],
    [
      { accessTokens: { appservices: [{ id: 'a', asToken: 't', senderUserId: 'bot' }] } },
      'accessTokens.appservices[0].senderUserId: expected a Matrix user ID like @bot:example.org, got "bot"',
    ],
  ];
  for (const [raw, message] of cases) {
    const withDs = Object.assign({ datastores: DS }, raw);
    let error: unknown;
    try {
      validateConfig(withDs);
    } catch (e) {
      error = e;
    }
    t.ok(error instanceof ConfigError && error instanceof Error, `ConfigError for ${String(message)}`);
    if (typeof message === 'string') t.equal((error as Error | undefined)?.message, message);
    else t.match((error as Error | undefined)?.message, message);
  }
});

t.test("s3 datastore opts get MMR's defaults; unknown keys are reported", async (t) => {
  const { config, warnings } = validateConfigWithWarnings({
    datastores: [
      { type: 's3', id: 's3', opts: { endpoint: 's3.example.org:9000', bucketName: 'media', acessKeyId: 'typo' } },
    ],
  });
  t.same(config.datastores[0]!.opts, {
    acessKeyId: 'typo',
    endpoint: 's3.example.org:9000',
    bucketName: 'media',
    accessKeyId: '',
    accessSecret: '',
    ssl: true,
    region: '',
    storageClass: 'STANDARD',
    tempPath: '',
    publicBaseUrl: '',
    redirectWhenCached: false,
    prefixLength: 0,
    multipartUploads: true,
    timeoutSeconds: 30,
  });
  t.same(warnings, ['datastores[0].opts.acessKeyId: unknown key, ignored']);
});

t.test('a directory merges its files in alphabetical order, later files winning', async (t) => {
  const dir = tempDir(t, {
    '10-base.yaml': `repo: { port: 8001, bindAddress: "0.0.0.0" }\nhomeservers: [{ name: a.org, csApi: "http://a" }]\ndatastores: [{ type: file, id: d, opts: { path: /tmp/d } }]\n`,
    '20-over.yml': 'repo: { port: 8002 }\n',
    'notes.txt': 'repo: { port: 1 }\n',
  });
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', '99.yaml'), 'repo: { port: 2 }\n');
  const loaded = await loadConfig(dir);
  t.equal(loaded.global.repo.port, 8002, 'later file wins');
  t.equal(loaded.global.repo.bindAddress, '0.0.0.0', 'earlier keys survive a partial override');
  t.same(loaded.files, [join(dir, '10-base.yaml'), join(dir, '20-over.yml')], 'not recursive, .txt ignored');
});

const MAIN = `homeservers: [{ name: a.org, csApi: "http://a" }, { name: b.org, csApi: "http://b" }]
datastores: [{ type: file, id: main, opts: { path: /tmp/main } }]
uploads: { maxBytes: 1000 }
`;

t.test('a per-domain file overrides its own domain only', async (t) => {
  const dir = tempDir(t, {
    'main.yaml': MAIN,
    'z-b.yaml': `homeserver: b.org\ncsApi: "http://b-internal:8008"\nbackoffAt: 3\nuploads: { maxBytes: 50000 }\ndatastores: [{ type: file, id: bstore, opts: { path: /tmp/b } }]\n`,
  });
  const { global, domains, files } = await loadConfig(dir);
  t.equal(global.uploads.maxBytes, 1000);
  t.equal(domains.get('a.org')!.uploads.maxBytes, 1000, 'a.org keeps the global value');
  t.equal(domains.get('b.org')!.uploads.maxBytes, 50000);
  t.equal(domains.get('b.org')!.uploads.minBytes, 1, 'unset keys come from the global section');
  t.equal(domains.get('b.org')!.datastores[0]!.id, 'bstore');
  t.equal(domains.get('a.org')!.datastores[0]!.id, 'main');
  t.same(domains.get('b.org')!.homeserver, {
    name: 'b.org',
    csApi: 'http://b-internal:8008',
    backoffAt: 3,
    adminApiKind: 'matrix',
    signingKeyPath: '',
  });
  t.equal(domains.get('a.org')!.homeserver.csApi, 'http://a');
  t.equal(files.length, 2);
});

t.test('per-domain files reject global-only keys and bad values', async (t) => {
  const bad: [string, RegExp][] = [
    ['homeserver: a.org\nrepo: { port: 1 }\n', /b\.yaml: "repo" cannot be set in a per-domain file/],
    ['homeserver: a.org\ndownloads: { numWorkers: 4 }\n', /b\.yaml: downloads\.numWorkers is process-wide/],
    ['homeserver: a.org\nthumbnails: { expireAfterDays: 4 }\n', /b\.yaml: thumbnails\.expireAfterDays is process-wide/],
    ['homeserver: a.org\nuploads: { maxBytes: "big" }\n', /b\.yaml: uploads\.maxBytes: expected an integer, got "big"/],
    ['homeserver: a.org\ndatastores: []\n', /b\.yaml: datastores: expected at least one enabled datastore/],
    ['homeserver: "not a name"\n', /b\.yaml: homeserver: expected a Matrix server name/],
  ];
  for (const [text, message] of bad) {
    const dir = tempDir(t, { 'a.yaml': MAIN, 'b.yaml': text });
    await t.rejects(loadConfig(dir), { name: 'ConfigError', message }, String(message));
  }
});

t.test('a per-domain file for an unlisted homeserver adds it', async (t) => {
  const dir = tempDir(t, {
    'a.yaml': MAIN,
    'c.yaml': 'homeserver: c.org\ncsApi: "https://c.org"\ntimeouts: { federationTimeoutSeconds: 5 }\n',
  });
  const { global, domains } = await loadConfig(dir);
  t.same(
    global.homeservers.map((h) => h.name),
    ['a.org', 'b.org', 'c.org'],
  );
  t.equal(domains.get('c.org')!.homeserver.csApi, 'https://c.org');
  t.equal(domains.get('c.org')!.timeouts.federationTimeoutSeconds, 5);
  t.equal(domains.get('a.org')!.timeouts.federationTimeoutSeconds, 120);
  const noApi = tempDir(t, { 'a.yaml': MAIN, 'c.yaml': 'homeserver: c.org\n' });
  await t.rejects(loadConfig(noApi), { message: /c\.yaml: csApi: expected an http\(s\) URL, got nothing/ });
});

t.test('YAML syntax errors name the file and line', async (t) => {
  const dir = tempDir(t, { 'broken.yaml': 'repo:\n  port: 8000\n  bad: [unclosed\n' });
  await t.rejects(loadConfig(join(dir, 'broken.yaml')), {
    name: 'ConfigError',
    message: /broken\.yaml line \d+: invalid YAML/,
  });
  await t.rejects(loadConfig(join(dir, 'missing.yaml')), {
    name: 'ConfigError',
    message: /missing\.yaml: cannot read config/,
  });
});

t.test('embedded defaults create data/shared-secret once, mode 0600, and reuse it', async (t) => {
  const cwd = tempDir(t);
  const first = await loadConfig(undefined, { cwd });
  const secretFile = join(cwd, EMBEDDED_SECRET_FILE);
  t.equal(statSync(secretFile).mode & 0o777, 0o600);
  const token = first.global.sharedSecretAuth.token;
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  t.equal(readFileSync(secretFile, 'utf8').trim(), token);
  t.equal(first.global.sharedSecretAuth.enabled, true);
  t.same(
    first.global.homeservers.map((h) => [h.name, h.csApi]),
    [['localhost', 'http://localhost:8008']],
  );
  t.same(first.global.datastores[0], {
    id: 'default',
    type: 'file',
    enabled: true,
    forKinds: ['all'],
    opts: { path: join(cwd, 'data/media') },
  });
  t.ok(first.domains.has('localhost'));
  const second = await loadConfig(undefined, { cwd });
  t.equal(second.global.sharedSecretAuth.token, token, 'reused on the next start');
});

t.test('config.sample.yaml validates cleanly and documents every default key', async (t) => {
  const loaded = await loadConfig(join(root, 'config.sample.yaml'));
  t.same(loaded.warnings, [], 'no warnings');
  const sample = yaml.load(readFileSync(join(root, 'config.sample.yaml'), 'utf8')) as Record<string, unknown>;
  const missing: string[] = [];
  const walk = (defaults: Record<string, unknown>, given: unknown, path: string): void => {
    for (const [k, v] of Object.entries(defaults)) {
      const here = (given as Record<string, unknown> | undefined)?.[k];
      // Unbuilt MMR keys are documented as comments: setting one would draw its warning.
      if (here === undefined && !isUnbuilt(path + k)) missing.push(path + k);
      else if (v && typeof v === 'object' && !Array.isArray(v))
        walk(v as Record<string, unknown>, here, `${path}${k}.`);
    }
  };
  walk(defaultConfig(), sample, '');
  t.same(missing, []);
  t.same(loaded.global.repo, defaultConfig().repo, 'sample values are the defaults');
  t.same(loaded.global.uploads, defaultConfig().uploads);
});

t.test('thumbnails, identicons and featureSupport.MSC2448 are validated with exact messages', async (t) => {
  const bad: [unknown, string][] = [
    [{ thumbnails: { sizes: [] } }, 'thumbnails.sizes: expected at least one size, got []'],
    [
      { thumbnails: { sizes: [{ width: 0, height: 5 }] } },
      'thumbnails.sizes[0].width: expected an integer from 1 to 10000, got 0',
    ],
    [{ thumbnails: { stillFrame: 2 } }, 'thumbnails.stillFrame: expected a number from 0 to 1, got 2'],
    [{ thumbnails: { maxPixels: 'lots' } }, 'thumbnails.maxPixels: expected an integer of at least 1, got "lots"'],
    [{ identicons: { enabled: 'yes' } }, 'identicons.enabled: expected true or false, got "yes"'],
    [
      { featureSupport: { MSC2448: { xComponents: 10 } } },
      'featureSupport.MSC2448.xComponents: expected an integer from 1 to 9, got 10',
    ],
  ];
  for (const [doc, message] of bad) {
    t.throws(() => validateConfigWithWarnings({ datastores: DS, ...(doc as object) }), { message }, message);
  }
  const ok = validateConfigWithWarnings({
    datastores: DS,
    thumbnails: { types: ['IMAGE/PNG'] },
    featureSupport: { MSC2246: { enabled: true } },
  });
  t.same(ok.config.thumbnails.types, ['image/png'], 'types compare lower-case');
  t.same(
    ok.warnings,
    ['featureSupport.MSC2246: unknown key, ignored'],
    'old MMR feature toggles warn instead of failing',
  );
});
