import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { POSTGRES_URL } from './helpers/databases.js';
import { startFixtureHomeserver } from './helpers/homeserver.js';
import { seedPglite } from './helpers/pglite-template.js';
import { ALICE, SERVER_NAME, startTestRepo, testConfig, type TestRepo } from './helpers/repo.js';
import { createSynapseFixture, type SynapseFixture } from './helpers/synapse-fixture.js';

// `media-repo import synapse` end to end: a synthetic Synapse (Postgres tables + media store)
// is imported by the built CLI into a PGlite database and a file datastore, then a media-repo
// on that database serves what was imported. Missing files, URL-preview rows, pending uploads,
// hostile IDs and a symlink out of the store are reported and skipped; interrupted and killed
// runs resume; a repeated run imports nothing.

const cli = new URL('../src/cli.js', import.meta.url).pathname;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Expect {
  origin: string;
  mediaId: string;
  bytes: Buffer;
  type: string;
  name: string | null;
}

interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Runs the CLI; `onOutput` sees the output so far and may kill the child. */
function runCli(args: string[], onOutput?: (out: string, kill: (s: NodeJS.Signals) => void) => void) {
  return new Promise<CliResult>((resolve) => {
    const child = spawn(process.execPath, [cli, 'import', 'synapse', ...args], {
      env: { ...process.env, REPO_CONFIG: '' },
    });
    let out = '';
    let killed = false;
    const kill = (s: NodeJS.Signals) => {
      if (killed) return;
      killed = true;
      child.kill(s);
    };
    const data = (d: Buffer) => {
      out += d.toString();
      onOutput?.(out, kill);
    };
    child.stdout.on('data', data);
    child.stderr.on('data', data);
    child.on('close', (status, signal) => resolve({ status, signal, out }));
  });
}

const importedLines = (out: string) => out.split('\n').filter((l) => /\bimported\b.*mxc:\/\//.test(l)).length;

t.test('import synapse', { skip: POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set' }, async (t) => {
  const syn: SynapseFixture = await createSynapseFixture();
  const dir = mkdtempSync(join(tmpdir(), 'import-synapse-'));
  t.teardown(async () => {
    await syn.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const dbDir = join(dir, 'db');
  const mediaDir = join(dir, 'media');
  const configFile = join(dir, 'media-repo.yaml');
  writeFileSync(configFile, yaml.dump(testConfig(dir, 'http://127.0.0.1:9', '')));
  const base = ['--synapse-db', syn.dsn, '--media-store', syn.store, '--server-name', SERVER_NAME];
  const withConfig = [...base, '--config', configFile];

  // ---- The synthetic Synapse ----
  const expected: Expect[] = [];
  const local = async (mediaId: string, bytes: Buffer, type: string, name: string | null, more = {}) => {
    await syn.addLocal({ mediaId, bytes, type, name, ...more });
    expected.push({ origin: SERVER_NAME, mediaId, bytes, type, name });
  };
  const cat = randomBytes(3000);
  await local('plainAAAAAAAAAA', cat, 'image/png', 'cat.png', {
    userId: '@bob:media.test',
    createdTs: 1_500_000_000_123,
  });
  await local('unicodeAAAAAAAA', randomBytes(5000), 'application/pdf', 'résumé 1.pdf', { authenticated: true });
  await local('dupAAAAAAAAAAAA', cat, 'image/png', 'copy.png'); // the same bytes: one blob
  await local('quarAAAAAAAAAAA', randomBytes(700), 'image/gif', 'bad.gif', { quarantinedBy: '@admin:media.test' });
  await local('safeAAAAAAAAAAA', randomBytes(800), 'image/png', 'logo.png', { safe: true });
  await local('sizeAAAAAAAAAAA', randomBytes(100), 'text/plain', 'short.txt', { length: 999 });
  await local('hashAAAAAAAAAAA', randomBytes(100), 'text/plain', null, { sha256: 'ab'.repeat(32) });
  for (let i = 0; i < 150; i++) {
    const id = `bulk${String(i).padStart(4, '0')}AAAAAAA`;
    await local(id, randomBytes(1000 + ((i * 7919) % 60_000)), 'application/octet-stream', `f${i}.bin`);
  }
  // Rows that must not become media.
  await syn.addLocal({ mediaId: '2020-01-01_urlcacheAAAAA', bytes: randomBytes(50), urlCache: 'https://example.org/' });
  await syn.addLocal({ mediaId: 'missingAAAAAAAA', bytes: randomBytes(10), noFile: true });
  await syn.addLocal({ mediaId: 'pendingAAAAAAAA', length: null, noFile: true, type: null });
  await syn.addLocal({ mediaId: '../../etc/passwd', noFile: true });
  await syn.addLocal({ mediaId: 'abcd..', noFile: true });
  const secret = Buffer.from('outside the media store\n');
  writeFileSync(join(syn.outside, 'secret.txt'), secret);
  await syn.addLocal({ mediaId: 'SYMLINKAAAAAAAA', bytes: secret, noFile: true });
  syn.placeFile('local_content/SY/ML/INKAAAAAAAA', null, join(syn.outside, 'secret.txt'));
  // Remote cache.
  const remote = async (origin: string, mediaId: string, filesystemId: string, type: string, more = {}) => {
    const bytes = randomBytes(2048);
    await syn.addRemote({ origin, mediaId, filesystemId, bytes, type, name: `${mediaId}.bin`, ...more });
    expected.push({ origin, mediaId, bytes, type, name: `${mediaId}.bin` });
  };
  await remote('remote.example', 'remoteAAAAAAAAA', 'fsidAAAAAAAAAAAAAAA1', 'image/jpeg');
  await remote('other.example:8448', 'remoteBBBBBBBBB', 'fsidAAAAAAAAAAAAAAA2', 'video/mp4');
  await remote('remote.example', 'remoteQuarAAAAA', 'fsidAAAAAAAAAAAAAAA3', 'image/png', {
    quarantinedBy: '@admin:media.test',
  });
  await syn.addRemote({ origin: '..', mediaId: 'remoteCCCCCCCCC', filesystemId: 'fsidAAAAAAAAAAAAAAA4', noFile: true });
  await syn.addRemote({
    origin: 'remote.example',
    mediaId: 'remoteDDDDDDDDD',
    filesystemId: '../../../../../etc/passwd',
    noFile: true,
  });
  await syn.addRemote({
    origin: 'remote.example',
    mediaId: 'remoteMissAAAAA',
    filesystemId: 'fsidAAAAAAAAAAAAAAA5',
    noFile: true,
  });
  const quarantined = new Set(['quarAAAAAAAAAAA', 'remoteQuarAAAAA']);
  const total = expected.length;

  await t.test('usage errors exit 2 with a message', async (t) => {
    const unknown = await runCli([...withConfig, '--frobnicate']);
    t.equal(unknown.status, 2);
    t.match(unknown.out, /unknown flag --frobnicate/);
    t.match(unknown.out, /Usage: media-repo import synapse/);
    const noStore = await runCli(['--synapse-db', syn.dsn, '--server-name', SERVER_NAME, '--config', configFile]);
    t.equal(noStore.status, 2);
    t.match(noStore.out, /--media-store is required/);
    const sqlite = await runCli([...base, '--config', configFile, '--synapse-sqlite', '/tmp/homeserver.db']);
    t.equal(sqlite.status, 2);
    t.match(sqlite.out, /synapse_port_db/);
    const stranger = await runCli([...base.slice(0, 4), '--server-name', 'elsewhere.test', '--config', configFile]);
    t.equal(stranger.status, 2);
    t.match(stranger.out, /elsewhere\.test is not a homeserver of the media-repo config/);
    const noDir = await runCli([
      ...base.slice(0, 2),
      '--media-store',
      join(dir, 'nope'),
      ...base.slice(4),
      '--config',
      configFile,
    ]);
    t.equal(noDir.status, 1, 'a missing media store is fatal');
    t.match(noDir.out, /is not a directory/);
    const badDb = await runCli([
      '--synapse-db',
      'postgres://postgres@127.0.0.1:1/synapse',
      ...base.slice(2),
      '--config',
      configFile,
    ]);
    t.equal(badDb.status, 1, 'an unreachable database is fatal');
    t.match(badDb.out, /cannot connect to the Synapse database/);
  });

  await t.test('--dry-run counts and writes nothing', async (t) => {
    const r = await runCli([...withConfig, '--dry-run']);
    t.equal(r.status, 0, r.out);
    t.match(r.out, new RegExp(`dry run: would import ${total} file\\(s\\)`));
    t.match(r.out, /"event":"missing-file","mxc":"mxc:\/\/media\.test\/missingAAAAAAAA"/);
    t.match(r.out, /"event":"unsafe-row","mxc":"mxc:\/\/media\.test\/\.\.\/\.\.\/etc\/passwd"/);
    t.match(r.out, /1 URL-preview row\(s\) skipped, 1 pending upload\(s\)/);
    t.notOk(existsSync(dbDir), 'no database was created');
    t.notOk(existsSync(mediaDir), 'no datastore was created');
  });

  await seedPglite(dbDir);

  await t.test('an interrupted and a killed run resume to the full set', async (t) => {
    // Small store batches: the kills land between and inside batches, as a crash might.
    const first = await runCli([...withConfig, '--concurrency', '1', '--batch-files', '4'], (out, kill) => {
      if (importedLines(out) >= 3) kill('SIGINT');
    });
    t.equal(first.status, 130, `Ctrl-C: exit 130\n${first.out.slice(-2000)}`);
    t.match(first.out, /interrupted: run the same command again to resume/);
    const afterFirst = importedLines(first.out);
    t.ok(afterFirst >= 3 && afterFirst < total, `stopped early (${afterFirst} of ${total})`);

    const second = await runCli([...withConfig, '--concurrency', '1', '--batch-files', '4'], (out, kill) => {
      if (importedLines(out) >= 3) kill('SIGKILL');
    });
    t.equal(second.signal, 'SIGKILL', 'killed');
    const afterSecond = importedLines(second.out);
    t.ok(afterFirst + afterSecond < total, 'the killed run did not finish either');

    const third = await runCli([...withConfig, '--concurrency', '3']);
    t.equal(third.status, 0, third.out.slice(-3000));
    const m = /imported (\d+) file\(s\) .*; (\d+) already there, (\d+) missing on disk, (\d+) unsafe/.exec(third.out);
    t.ok(m, 'summary line');
    const [imported, already, missing, unsafe] = m!.slice(1).map(Number) as [number, number, number, number];
    t.ok(already >= afterFirst + afterSecond - 1, `what the earlier runs stored is not imported again (${already})`);
    t.equal(imported + already, total, 'together the runs imported every item once');
    t.equal(missing, 2, 'missingAAAAAAAA and remoteMissAAAAA');
    t.equal(unsafe, 5, 'two hostile local IDs, the symlink, a hostile origin and filesystem ID');
    t.match(third.out, /"event":"unsafe-path","mxc":"mxc:\/\/media\.test\/SYMLINKAAAAAAAA".*outside the media store/);
    t.match(third.out, /"event":"unsafe-row","mxc":"mxc:\/\/\.\.\/remoteCCCCCCCCC"/);
    t.match(third.out, /"event":"unsafe-row","mxc":"mxc:\/\/remote\.example\/remoteDDDDDDDDD"/);
    t.match(third.out, /"event":"missing-file","mxc":"mxc:\/\/remote\.example\/remoteMissAAAAA"/);
    t.match(
      third.out,
      /"event":"size-mismatch","mxc":"mxc:\/\/media\.test\/sizeAAAAAAAAAAA","file":100,"mediaLength":999/,
    );
    t.match(third.out, /"event":"hash-mismatch","mxc":"mxc:\/\/media\.test\/hashAAAAAAAAAAA"/);
  });

  await t.test('a media-repo on the imported database serves every item', async (t) => {
    const hs = await startFixtureHomeserver();
    hs.tokens.set(ALICE, { userId: '@alice:media.test' });
    hs.tokens.set('admin-token', { userId: '@admin:media.test' });
    let r: TestRepo | null = null;
    t.teardown(async () => {
      await r?.close();
      await hs.close();
    });
    r = await startTestRepo('pglite', {
      homeservers: [{ name: SERVER_NAME, csApi: hs.url, adminApiKind: 'synapse' }],
      database: { postgres: '', embeddedPath: dbDir },
      datastores: [{ id: 'files', type: 'file', forKinds: ['all'], opts: { path: mediaDir } }],
    });
    for (const e of expected) {
      const res = await r.fetch(`/_matrix/client/v1/media/download/${e.origin}/${e.mediaId}`, { token: ALICE });
      const body = Buffer.from(await res.arrayBuffer());
      if (quarantined.has(e.mediaId)) {
        t.equal(res.status, 404, `${e.mediaId}: quarantined media are refused`);
        continue;
      }
      t.equal(res.status, 200, `${e.origin}/${e.mediaId}`);
      t.equal(sha(body), sha(e.bytes), `${e.mediaId}: byte-identical`);
      t.equal(res.headers.get('content-type'), e.type, `${e.mediaId}: content type`);
      if (e.name) {
        const cd = res.headers.get('content-disposition') ?? '';
        t.ok(cd.includes(e.name) || cd.includes(encodeURIComponent(e.name)), `${e.mediaId}: filename in ${cd}`);
      }
    }
    const rows = await r.repo.services.db.query<{ origin: string; media_id: string }>(
      'SELECT origin, media_id FROM media',
    );
    t.same(
      rows.rows.map((x) => `${x.origin}/${x.media_id}`).sort(),
      expected.map((e) => `${e.origin}/${e.mediaId}`).sort(),
      'exactly the importable rows, nothing for missing, pending, URL-preview or hostile ones',
    );
    const secretRows = await r.repo.services.db.query('SELECT 1 FROM media WHERE sha256_hash = $1', [sha(secret)]);
    t.equal(secretRows.rowCount, 0, 'the file behind the symlink was not imported');
    t.same(readdirSync(syn.outside), ['secret.txt'], 'nothing written outside the media store');
    t.same(readFileSync(join(syn.outside, 'secret.txt')), secret);
    const blobs = await r.repo.services.db.query<{ n: string }>(
      "SELECT count(DISTINCT location)::text AS n FROM media WHERE origin = $1 AND media_id IN ('plainAAAAAAAAAA', 'dupAAAAAAAAAAAA')",
      [SERVER_NAME],
    );
    t.equal(blobs.rows[0]!.n, '1', 'the same bytes are one blob');

    const info = async (origin: string, id: string) => {
      const res = await r!.fetch(`/_synapse/admin/v1/media/${origin}/${id}`, { token: 'admin-token' });
      t.equal(res.status, 200, `media info ${id}`);
      return ((await res.json()) as { media_info: Record<string, unknown> }).media_info;
    };
    const safe = await info(SERVER_NAME, 'safeAAAAAAAAAAA');
    t.equal(safe.safe_from_quarantine, true, 'safe_from_quarantine became pinned');
    const plain = await info(SERVER_NAME, 'plainAAAAAAAAAA');
    t.equal(plain.safe_from_quarantine, false);
    t.equal(plain.user_id, '@bob:media.test', 'uploader kept');
    t.equal(plain.created_ts, 1_500_000_000_123, 'creation time kept');
    t.equal(plain.authenticated, false);
    const unicode = await info(SERVER_NAME, 'unicodeAAAAAAAA');
    t.equal(unicode.authenticated, true, 'authenticated (MSC3916) kept');
    const quar = await info(SERVER_NAME, 'quarAAAAAAAAAAA');
    t.equal(quar.quarantined_by, '@admin:media.test', 'who quarantined it is kept');
    const remoteInfo = await r.repo.services.db.query<{ user_id: string; quarantined: boolean }>(
      "SELECT user_id, quarantined FROM media WHERE origin = 'remote.example' AND media_id = 'remoteQuarAAAAA'",
    );
    t.same(remoteInfo.rows[0], { user_id: '', quarantined: true }, 'remote quarantine kept, no uploader');
  });

  await t.test('a second run imports nothing new', async (t) => {
    const again = await runCli(withConfig);
    t.equal(again.status, 0, again.out.slice(-2000));
    t.match(again.out, new RegExp(`imported 0 file\\(s\\) \\(0\\.0 MiB\\); ${total} already there`));
    const dry = await runCli([...withConfig, '--dry-run']);
    t.equal(dry.status, 0);
    t.match(dry.out, new RegExp(`would import 0 file\\(s\\) \\(0\\.0 MiB\\); ${total} already there`));
  });
});

t.test(
  'an older Synapse schema (no safe_from_quarantine, authenticated, sha256) imports; --local-only and --remote-only',
  {
    skip: POSTGRES_URL ? false : 'MEDIA_REPO_TEST_POSTGRES is not set',
  },
  async (t) => {
    const syn = await createSynapseFixture({ legacy: true });
    const dir = mkdtempSync(join(tmpdir(), 'import-synapse-legacy-'));
    t.teardown(async () => {
      await syn.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await seedPglite(join(dir, 'db'));
    const configFile = join(dir, 'media-repo.yaml');
    writeFileSync(configFile, yaml.dump(testConfig(dir, 'http://127.0.0.1:9', '')));
    await syn.addLocal({ mediaId: 'oldAAAAAAAAAAAA', bytes: randomBytes(300), type: 'image/png' });
    await syn.addRemote({
      origin: 'remote.example',
      mediaId: 'oldRemoteAAAAAA',
      filesystemId: 'fsidOLD000000001',
      bytes: randomBytes(30),
    });
    const args = ['--synapse-db', syn.dsn, '--media-store', syn.store, '--server-name', SERVER_NAME];
    const remoteOnly = await runCli([...args, '--config', configFile, '--remote-only']);
    t.equal(remoteOnly.status, 0, remoteOnly.out);
    t.match(remoteOnly.out, /imported 1 file\(s\)/, '--remote-only: the cached remote file');
    t.notMatch(remoteOnly.out, /"phase":"local media"/);
    const localOnly = await runCli([...args, '--config', configFile, '--local-only']);
    t.equal(localOnly.status, 0, localOnly.out);
    t.match(localOnly.out, /imported 1 file\(s\)/, '--local-only: the local file');
    t.notMatch(localOnly.out, /"phase":"remote media"/);
    const both = await runCli([...args, '--config', configFile]);
    t.equal(both.status, 0, both.out);
    t.match(both.out, /imported 0 file\(s\) \(0\.0 MiB\); 2 already there, 0 missing on disk, 0 unsafe/);
    const clash = await runCli([...args, '--config', configFile, '--local-only', '--remote-only']);
    t.equal(clash.status, 2);
    t.match(clash.out, /exclude each other/);
  },
);
