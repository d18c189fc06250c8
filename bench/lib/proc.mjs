// Child processes for the benchmarks: every process started here is registered, and all of
// them are stopped on normal exit, on an error, and on SIGINT/SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const children = new Set();

/**
 * Starts `cmd args`, with stdout and stderr appended to `logFile`.
 * Returns { child, pid, name, exited, stop() }.
 */
export function startChild(name, cmd, args, { cwd, env, logFile } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
  let tail = '';
  const keep = (d) => {
    tail = (tail + d).slice(-8000);
    out?.write(d);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const entry = {
    name,
    child,
    pid: child.pid,
    exitCode: null,
    output: () => tail,
    exited: new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        entry.exitCode = code ?? signal;
        children.delete(entry);
        out?.end();
        resolve(code ?? signal);
      }),
    ),
    /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process is gone. */
    async stop(graceMs = 10_000) {
      if (entry.exitCode !== null) return entry.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await entry.exited;
      clearTimeout(t);
      return code;
    },
  };
  child.on('error', (e) => {
    keep(`spawn error: ${e.message}\n`);
    entry.exitCode = 'error';
  });
  children.add(entry);
  return entry;
}

/** Stops every registered child (in parallel). */
export async function stopAll() {
  await Promise.all([...children].map((c) => c.stop(5000).catch(() => {})));
}

let hooked = false;
/** Makes sure children die with us, whatever the way out. */
export function installCleanup() {
  if (hooked) return;
  hooked = true;
  const hard = () => {
    for (const c of children) {
      try {
        c.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  process.on('exit', hard);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      console.error(`\n${sig}: stopping child processes`);
      stopAll().finally(() => process.exit(130));
    });
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers (any status), the child exits, or `timeoutMs` passes. */
export async function waitForHttp(url, { child, timeoutMs = 60_000, headers } = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    if (child && child.exitCode !== null) {
      throw new Error(`${child.name} exited (${child.exitCode}) before answering:\n${child.output()}`);
    }
    try {
      const r = await fetch(url, { headers });
      await r.arrayBuffer();
      return r.status;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(
    `${url} did not answer within ${timeoutMs} ms (${last?.message})${child ? `:\n${child.output()}` : ''}`,
  );
}

/** VmRSS of a process in bytes, or null when it is gone. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Direct children of a process (nginx workers of the master). */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Flushes dirty pages so one measurement does not pay for the previous one's writeback. */
export function syncDisks() {
  spawnSync('sync', { stdio: 'ignore' });
}

export function commandVersion(cmd, args, re) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const m = re.exec(text);
  return m ? m[1] : null;
}

const TICKS = 100; // USER_HZ on Linux
/** utime + stime of the processes, in seconds (for "server CPU %" during a measurement). */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // fields 14 and 15 of stat(5)
    } catch {
      /* gone */
    }
  }
  return ticks / TICKS;
}

/**
 * CPU seconds of the load generator: this bench process (autocannon's worker threads and our
 * own clients run in it) plus its finished children (wrk, the shell baselines), whose times
 * the kernel adds to cutime/cstime once they are reaped. The servers are children too, but
 * still running, so they are not counted.
 */
export function loadGenCpuSeconds() {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS; // fields 14-17 of stat(5)
}

/** Measures CPU use of `pids()` and of the load generator over `fn()`; resolves
 * { result, cpuPct, loadGenCpuPct } (100 = one core; cpuPct null without pids). */
export async function withCpu(pids, fn) {
  const p = typeof pids === 'function' ? pids : () => pids;
  const some = p().length > 0;
  const c0 = some ? cpuSeconds(p()) : 0;
  const g0 = loadGenCpuSeconds();
  const t0 = performance.now();
  const result = await fn();
  const secs = (performance.now() - t0) / 1000;
  const loadGenCpuPct = ((loadGenCpuSeconds() - g0) / secs) * 100;
  if (!some) return { result, cpuPct: null, loadGenCpuPct };
  return { result, cpuPct: ((cpuSeconds(p()) - c0) / secs) * 100, loadGenCpuPct };
}
