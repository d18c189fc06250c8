import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/config/defaults.js';

// deploy/media-repo.service: systemd must accept it without a warning, and the hardening the
// README promises must stay in it. deploy/try-unit.sh runs it under a real systemd (root only).
const root = new URL('../..', import.meta.url).pathname; // dist/test -> repo root
const unitText = readFileSync(join(root, 'deploy/media-repo.service'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };

/** [Service] settings; a key given twice (SystemCallFilter) keeps every value. */
function section(text: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      current = line;
      continue;
    }
    if (current !== `[${name}]`) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}
const service = section(unitText, 'Service');
const one = (key: string) => service.get(key)?.at(-1);

const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
const noAnalyze = hasAnalyze
  ? false
  : 'systemd-analyze is not installed (Debian: apt-get install systemd); .ci/run installs it';

/**
 * `systemd-analyze verify` on a copy of the unit whose ExecStart runs this test's own node:
 * verify refuses an ExecStart binary that does not exist, and /usr/bin/node is where the
 * deployment has node, not necessarily where this machine does. Everything else is verbatim.
 * Verify exits 0 even on unknown keys or bad values, so its output is what tells.
 */
function verify(text: string): { status: number | null; complaints: string[]; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-unit-'));
  try {
    const file = join(dir, 'media-repo.service');
    writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', timeout: 60_000 });
    const output = `${r.stdout}${r.stderr}`;
    // Lines about other units on this machine (pulled in through After=) are not ours to fix.
    const complaints = output.split('\n').filter((l) => l.includes(file) || l.includes('media-repo.service'));
    return { status: r.status, complaints, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('systemd-analyze verify accepts the unit without a warning', { skip: noAnalyze }, async (t) => {
  const r = verify(unitText);
  t.equal(r.status, 0, r.output);
  t.same(r.complaints, [], 'no warning names the unit');
});

t.test('the verify check can fail: a misspelt key and a bad value are caught', { skip: noAnalyze }, async (t) => {
  const r = verify(unitText.replace('ProtectHome=yes', 'ProtectHome=yes\nProtectHomme=yes\nProtectSystem=sometimes'));
  t.match(r.complaints.join('\n'), /ProtectHomme/);
  t.match(r.complaints.join('\n'), /sometimes|protect system/i);
});

t.test('ExecStart runs the launcher from the package bin with a config path', async (t) => {
  const exec = one('ExecStart') ?? '';
  t.match(exec, new RegExp(`${pkg.bin['media-repo']!.replace(/\./g, '\\.')} -config /`), exec);
  t.equal(one('Type'), 'exec');
  t.equal(one('User'), 'media-repo');
  t.equal(one('WorkingDirectory'), '/var/lib/media-repo', 'relative data paths land in the state directory');
  t.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  t.equal(one('Restart'), 'on-failure');
  t.equal(one('KillSignal'), 'SIGTERM');
});

t.test('TimeoutStopSec leaves room for the grace period, the drain and the close after them', async (t) => {
  const m = /^(\d+)s$/.exec(one('TimeoutStopSec') ?? '');
  t.ok(m, `TimeoutStopSec in seconds: ${one('TimeoutStopSec')}`);
  const { shutdownGraceSeconds: grace, shutdownDrainSeconds: drain } = defaultConfig().repo;
  t.ok(Number(m?.[1]) >= grace + drain + 10, `${m?.[1]} s vs a ${grace} s grace period and a ${drain} s drain`);
});

t.test('jemalloc is preloaded for sharp', async (t) => {
  const env = service.get('Environment') ?? [];
  t.ok(
    env.some((e) => /^LD_PRELOAD=\/usr\/lib\/[^/]+\/libjemalloc\.so\.2$/.test(e)),
    env.join(' '),
  );
});

t.test('the hardening set is present', async (t) => {
  const expected: Record<string, string> = {
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
    RestrictNamespaces: 'yes',
    LockPersonality: 'yes',
    RestrictRealtime: 'yes',
    RestrictSUIDSGID: 'yes',
    SystemCallArchitectures: 'native',
    CapabilityBoundingSet: '',
    SystemCallErrorNumber: 'EPERM',
    UMask: '0027',
    LimitNOFILE: '65536',
    StateDirectory: 'media-repo',
    LogsDirectory: 'media-repo',
    ConfigurationDirectory: 'media-repo',
  };
  for (const [key, value] of Object.entries(expected)) t.equal(one(key), value, key);
  t.ok(service.get('SystemCallFilter')?.includes('@system-service'), 'SystemCallFilter=@system-service');
  t.same((one('ReadWritePaths') ?? '').split(' ').sort(), ['/var/lib/media-repo', '/var/log/media-repo']);
});

t.test('MemoryDenyWriteExecute is absent: V8 aborts under it', async (t) => {
  t.notOk(service.has('MemoryDenyWriteExecute'));
});
