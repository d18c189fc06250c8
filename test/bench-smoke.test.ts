import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

// The bench suite runs end to end and writes its report: `node bench/run.mjs --smoke` on a few
// fast scenarios, as a child process. What it measures is not checked here (tiny bounds on a
// shared machine give meaningless figures), only that it runs and reports.
const root = new URL('../../', import.meta.url).pathname; // from dist/test/
const has = (cmd: string) => spawnSync('/bin/sh', ['-c', `command -v ${cmd}`]).status === 0;

t.test(
  'bench/run.mjs --smoke runs and writes markdown, JSON and a PNG chart',
  { skip: has('nginx') ? false : 'nginx is not installed (the bench starts it as the baseline)' },
  async (t) => {
    const results = mkdtempSync(join(tmpdir(), 'media-repo-bench-'));
    t.teardown(() => rmSync(results, { recursive: true, force: true }));
    // tap's spawn hook puts its loader into NODE_OPTIONS of child node processes; the bench's
    // own children (the server, autocannon workers) must start without it.
    const r = spawnSync(
      '/bin/sh',
      [
        '-c',
        'unset NODE_OPTIONS; exec "$0" "$@"',
        process.execPath,
        join(root, 'bench', 'run.mjs'),
        '--smoke',
        '--files',
        '10',
        '--max-requests',
        '300',
        '--results',
        results,
        'upload-concurrent',
        'download-1kib',
        'mixed',
      ],
      { cwd: root, encoding: 'utf8', timeout: 150_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    t.equal(r.status, 0, `exit status (output tail: ${out.slice(-2000)})`);
    for (const s of ['upload-concurrent', 'download-1kib', 'mixed'])
      t.match(r.stdout, new RegExp(`\\] .*${s} done`), `progress line for ${s}`);

    const files = readdirSync(results);
    const find = (ext: string) => files.find((f) => f.startsWith('report-') && f.endsWith(ext));
    const md = find('.md');
    const json = find('.json');
    const png = find('.png');
    t.ok(md && json && png, `report files written (${files.join(', ')})`);
    if (!md || !json || !png) return;

    t.match(readFileSync(join(results, md), 'utf8'), /\| mixed \| ours \|/);
    const doc = JSON.parse(readFileSync(join(results, json), 'utf8'));
    t.same(doc.scenarios.map((s: { name: string }) => s.name).sort(), ['download-1kib', 'mixed', 'upload-concurrent']);
    for (const s of doc.scenarios) t.ok('ours' in s && 'ratio' in s, `${s.name} has its figures`);

    const bytes = readFileSync(join(results, png));
    t.same([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
    const meta = await sharp(bytes).metadata();
    t.equal(meta.format, 'png');
    t.ok((meta.width ?? 0) > 100 && (meta.height ?? 0) > 100, `chart size ${meta.width}x${meta.height}`);
  },
);
