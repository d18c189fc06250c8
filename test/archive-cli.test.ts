import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logging/logger.js';
import { startMediaRepo } from '../src/main.js';
import { drivers } from './helpers/databases.js';
import { manifestFor, mediaEntries, rawTgz, sha256 } from './helpers/archive-files.js';
import { ALICE, BOB, SERVER_NAME, startTestRepo, type TestRepo } from './helpers/repo.js';

// `media-repo export` then `media-repo import archive` through the built CLI: media uploaded
// to one repo, exported, imported into a fresh repo (the "deleted" state) and downloaded there
// byte-identical with the same mxc URIs; a second import changes nothing; a truncated part is
// refused with one line and imports nothing. Each CLI run happens while its repo is stopped
// (PGlite has one owner at a time), as an operator would run it.

const cli = new URL('../src/cli.js', import.meta.url).pathname;

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The `phase: done` summary line of a JSON-lines progress run. */
function summary(stdout: string): Record<string, unknown> {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.includes('"phase":"done"'));
  return line ? (JSON.parse(line) as Record<string, unknown>) : {};
}

async function upload(r: TestRepo, body: Buffer, token: string, name: string, type: string): Promise<string> {
  const res = await r.fetch(`/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': type },
    token,
  });
  const j = (await res.json()) as { content_uri: string };
  return j.content_uri.split('/').pop()!;
}

// One driver, not both: the CLI runs here are several full process starts each, and CI time is
// tight. Postgres where it is configured (the SQL of the export and import runs on it, while
// test/archive-api.test.ts covers PGlite), else PGlite.
const chosen = [drivers().find((x) => x.name === 'postgres' && !x.skip) ?? drivers().find((x) => x.name === 'pglite')!];
for (const d of chosen) {
  t.test(`export, import into a fresh repo, download (${d.name})`, { skip: d.skip }, async (t) => {
    const a = await startTestRepo(d.name);
    t.teardown(() => a.close());
    const out = await mkdtemp(join(tmpdir(), 'archive-cli-'));
    t.teardown(() => rm(out, { recursive: true, force: true }));
    const files = [
      { body: randomBytes(5000), name: 'holiday <1>.png', type: 'image/png' },
      { body: randomBytes(3000), name: 'notes.txt', type: 'text/plain' },
      { body: Buffer.from('same bytes twice'), name: 'dup-a', type: 'application/octet-stream' },
      { body: Buffer.from('same bytes twice'), name: 'dup-b', type: 'application/octet-stream' },
    ];
    const ids: string[] = [];
    for (const f of files) ids.push(await upload(a, f.body, ALICE, f.name, f.type));
    const bobId = await upload(a, randomBytes(100), BOB, 'bob.bin', 'application/octet-stream');
    await a.repo.stop(2000);

    const aConfig = join(a.dir, 'media-repo.yaml');
    const exp = await run([
      'export',
      '--user',
      '@alice:media.test',
      '--out',
      join(out, 'alice'),
      '--part-size',
      '4000',
      '--config',
      aConfig,
    ]);
    t.equal(exp.status, 0, `export exits 0\n${exp.stderr}`);
    t.match(summary(exp.stdout), { media: 4, skipped: 0 });
    const parts = (await readdir(join(out, 'alice'))).sort();
    t.ok(parts.includes('export-manifest.tgz') && parts.includes('export-part-2.tgz'), `parts: ${parts.join(' ')}`);
    const again = await run([
      'export',
      '--user',
      '@alice:media.test',
      '--out',
      join(out, 'alice'),
      '--config',
      aConfig,
    ]);
    t.equal(again.status, 1, 'a directory holding an export is refused');
    t.match(again.stderr, /already holds an export/);
    const usage = await run(['export', '--out', join(out, 'x'), '--config', aConfig]);
    t.equal(usage.status, 2, 'neither --user nor --server: usage error');
    t.match(usage.stderr, /give exactly one of --user and --server/);
    const bobExp = await run(['export', '--server', SERVER_NAME, '--out', join(out, 'server'), '--config', aConfig]);
    t.equal(bobExp.status, 0);
    t.match(summary(bobExp.stdout), { media: 5 }, 'a server export holds every local file');

    const b = await startTestRepo(d.name);
    t.teardown(() => b.close());
    await b.repo.stop(2000);
    const bConfig = join(b.dir, 'media-repo.yaml');

    // A truncated part: refused with one line before anything is imported.
    const serverParts = (await readdir(join(out, 'server'))).sort();
    const broken = join(out, 'broken');
    await rm(broken, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(broken));
    for (const p of serverParts) {
      const bytes = await readFile(join(out, 'server', p));
      await writeFile(join(broken, p), p === 'export-part-1.tgz' ? bytes.subarray(0, bytes.length - 10) : bytes);
    }
    const bad = await run(['import', 'archive', '--config', bConfig, ...serverParts.map((p) => join(broken, p))]);
    t.equal(bad.status, 1, 'a truncated part fails the import');
    // stderr also carries the log (opening the database); the command's own words are one line.
    const errLines = bad.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('media-repo'));
    t.equal(errLines.length, 1, `one line: ${bad.stderr}`);
    t.match(errLines[0], /^media-repo import archive: export-part-1\.tgz: truncated gzip stream/);

    // Parts given in reverse order: the manifest is found wherever it is.
    const partPaths = parts.map((p) => join(out, 'alice', p)).reverse();
    const imp = await run(['import', 'archive', '--config', bConfig, ...partPaths]);
    t.equal(imp.status, 0, `import exits 0\n${imp.stderr}`);
    t.match(summary(imp.stdout), { imported: 4, existing: 0, refused: 0, mismatched: 0, missing: 0 });
    const rerun = await run(['import', 'archive', '--config', bConfig, ...partPaths]);
    t.equal(rerun.status, 0);
    t.match(summary(rerun.stdout), { imported: 0, existing: 4 }, 'a second import changes nothing');

    // Per-entry refusals through the real import: a wrong hash and a foreign uploader cost only
    // their own entry; the good one beside them is imported.
    const good = { origin: SERVER_NAME, mediaId: 'archivegood', body: Buffer.from('good bytes') };
    const wrong = { origin: SERVER_NAME, mediaId: 'archivewrong', body: Buffer.from('wrong bytes') };
    const foreign = {
      origin: SERVER_NAME,
      mediaId: 'archiveforeign',
      body: Buffer.from('foreign bytes'),
      uploader: '@mallory:evil.org',
    };
    const three = [good, wrong, foreign];
    const manifest = manifestFor('@alice:media.test', three, {
      [`mxc://${SERVER_NAME}/archivewrong`]: { sha256: sha256(Buffer.from('other')) },
    });
    await writeFile(
      join(out, 'hostile.tgz'),
      rawTgz([...mediaEntries(three), { name: 'manifest.json', body: manifest }]),
    );
    const mixed = await run(['import', 'archive', '--config', bConfig, join(out, 'hostile.tgz')]);
    t.equal(mixed.status, 0, `per-entry problems do not fail the run\n${mixed.stderr}`);
    t.match(summary(mixed.stdout), { imported: 1, refused: 1, mismatched: 1 });
    t.match(
      mixed.stdout,
      /"event":"refused","mxc":"mxc:\/\/media\.test\/archiveforeign","reason":"uploader \\"@mallory:evil\.org\\" is not on the media's origin/,
    );
    t.match(mixed.stdout, /"event":"mismatch","mxc":"mxc:\/\/media\.test\/archivewrong"/);

    // The fresh repo serves every mxc with the same bytes, type and name; bob's was not exported.
    const log = createLogger({ level: 'error', json: false, sink: () => undefined });
    const b2 = await startMediaRepo({ config: await loadConfig(bConfig), configPath: bConfig, log, port: 0 });
    t.teardown(() => b2.stop(2000));
    const get = (id: string) =>
      fetch(`http://127.0.0.1:${b2.port}/_matrix/client/v1/media/download/${SERVER_NAME}/${id}`, {
        headers: { 'X-Forwarded-Host': SERVER_NAME, Authorization: `Bearer ${ALICE}` },
      });
    for (const [i, f] of files.entries()) {
      const res = await get(ids[i]!);
      t.equal(res.status, 200, `${f.name}: 200`);
      t.ok(Buffer.from(await res.arrayBuffer()).equals(f.body), `${f.name}: same bytes`);
      t.equal(res.headers.get('content-type'), f.type, `${f.name}: same type`);
      t.match(res.headers.get('content-disposition') ?? '', encodeURIComponent(f.name).slice(0, 5));
    }
    t.equal((await get(bobId)).status, 404, "bob's media was not in alice's export");
    const g = await get('archivegood');
    t.equal(g.status, 200);
    t.equal(Buffer.from(await g.arrayBuffer()).toString(), 'good bytes');
    t.equal((await get('archivewrong')).status, 404, 'the mismatched entry was not stored');
    t.equal((await get('archiveforeign')).status, 404, 'the refused entry was not stored');
  });
}
