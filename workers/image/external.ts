import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// External decoders (ffmpeg, ffprobe, heif-convert, djxl) run as child processes, each fenced:
// - its own empty temporary directory, holding a copy of the source (decoders seek, and an
//   mp4 may keep its index at the end) and its output;
// - a wall-clock limit (SIGKILL when it passes), an address-space limit and no core dumps
//   (prlimit), and bounded output (killed past it);
// - where bubblewrap works: no network, no other process, the system's /usr read-only and
//   nothing else of the filesystem but that directory, writable. `unshare -rn` (network only)
//   is the fallback; with neither, the decoders run unfenced and start-up logs it.
// Which tools exist and which fence works is found once per thread, on first use.

export type SandboxKind = 'bwrap' | 'unshare' | 'none';
export type Tool = 'ffmpeg' | 'ffprobe' | 'heif-convert' | 'djxl';
export const TOOLS: readonly Tool[] = ['ffmpeg', 'ffprobe', 'heif-convert', 'djxl'];

export interface RunLimits {
  timeoutMs: number;
  /** RLIMIT_AS of the decoder. Threads reserve address space: keep decoders single-threaded. */
  memoryBytes: number;
  /** Stdout past this kills the decoder. */
  maxOutputBytes: number;
}

export class DecoderError extends Error {
  override name = 'DecoderError';
  constructor(
    message: string,
    readonly reason: 'missing' | 'timeout' | 'output' | 'failed',
  ) {
    super(message);
  }
}

const present = new Map<Tool, boolean>();
let sandbox: SandboxKind | undefined;

let limitsWork: boolean | undefined;

/** prlimit (util-linux) applies the memory and CPU limits; without it no decoder is run. */
export function prlimitAvailable(): boolean {
  if (limitsWork === undefined) {
    try {
      limitsWork =
        spawnSync('prlimit', ['--as=1073741824', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
    } catch {
      limitsWork = false;
    }
  }
  return limitsWork;
}

/** Whether `tool` runs here (found and answering its version flag) under prlimit's limits. */
export function toolAvailable(tool: Tool): boolean {
  if (!prlimitAvailable()) return false;
  let ok = present.get(tool);
  if (ok === undefined) {
    const args = tool === 'heif-convert' ? ['--help'] : tool === 'djxl' ? ['--version'] : ['-version'];
    try {
      const r = spawnSync(tool, args, { stdio: 'ignore', timeout: 5000 });
      // heif-convert --help exits 0 on newer libheif and 1 on 1.15; a missing binary is ENOENT.
      ok = r.error === undefined && r.status !== null && r.status <= 1;
    } catch {
      ok = false;
    }
    present.set(tool, ok);
  }
  return ok;
}

/** Read-only system paths a dynamically linked decoder needs inside the sandbox. */
const SYSTEM_PATHS = ['/usr', '/lib', '/lib64', '/bin', '/etc/ld.so.cache', '/etc/alternatives', '/etc/fonts'];

function bwrapArgs(dir: string): string[] {
  const args = ['--unshare-all', '--die-with-parent', '--new-session', '--clearenv'];
  for (const p of SYSTEM_PATHS) args.push('--ro-bind-try', p, p);
  // The root bwrap builds is a tmpfs: made read-only, so the only writable place is `dir`.
  args.push('--dev', '/dev', '--proc', '/proc', '--bind', dir, dir, '--remount-ro', '/', '--chdir', dir, '--');
  return args;
}

/** The fence that works here: tried once with `true` inside it. */
export function sandboxKind(): SandboxKind {
  if (sandbox === undefined) {
    const works = (cmd: string, args: string[]) => {
      try {
        return spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 }).status === 0;
      } catch {
        return false;
      }
    };
    const probeDir = tmpdir();
    if (works('bwrap', [...bwrapArgs(probeDir), 'true'])) sandbox = 'bwrap';
    else if (works('unshare', ['-rn', 'true'])) sandbox = 'unshare';
    else sandbox = 'none';
  }
  return sandbox;
}

/** The command line that runs `cmd args` under the limits and the fence. */
function fenced(cmd: string, args: string[], dir: string, limits: RunLimits): [string, string[]] {
  const cpuSeconds = Math.max(1, Math.ceil(limits.timeoutMs / 1000));
  const inner: string[] =
    sandboxKind() === 'bwrap'
      ? ['bwrap', ...bwrapArgs(dir), cmd, ...args]
      : sandboxKind() === 'unshare'
        ? ['unshare', '-rn', '--', cmd, ...args]
        : [cmd, ...args];
  return ['prlimit', [`--as=${limits.memoryBytes}`, `--cpu=${cpuSeconds}`, '--core=0', '--', ...inner]];
}

/** A fresh private directory for one decoder run; removed by the caller. */
export async function workDir(): Promise<string> {
  const dir = join(tmpdir(), `media-repo-decode-${randomBytes(8).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

export async function withWorkDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await workDir();
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Writes the source into `dir` as `name` (owner-only) and returns its path. */
export async function placeSource(dir: string, name: string, source: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, source, { mode: 0o600 });
  return path;
}

/**
 * Runs `tool` in `dir` and resolves with its stdout; rejects with a DecoderError on a missing
 * tool, a timeout, too much output or a failing exit (its first stderr line in the message).
 * `onStdout`, when given, receives the output instead (streamed; nothing is kept).
 */
export function runTool(
  tool: Tool,
  args: string[],
  dir: string,
  limits: RunLimits,
  onStdout?: (chunk: Buffer) => void,
): Promise<Buffer> {
  if (!toolAvailable(tool)) return Promise.reject(new DecoderError(`${tool} is not installed`, 'missing'));
  return runFenced(tool, args, dir, limits, onStdout);
}

/** runTool for any program (the fence's own tests run a shell and node in it). */
export function runFenced(
  tool: string,
  args: string[],
  dir: string,
  limits: RunLimits,
  onStdout?: (chunk: Buffer) => void,
): Promise<Buffer> {
  const [cmd, argv] = fenced(tool, args, dir, limits);
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    const chunks: Buffer[] = [];
    let size = 0;
    let err = '';
    let killed: 'timeout' | 'output' | null = null;
    const kill = (why: 'timeout' | 'output') => {
      killed ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), limits.timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limits.maxOutputBytes) kill('output');
      else if (onStdout) onStdout(c);
      else chunks.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (err.length < 4000) err += c.toString();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new DecoderError(`${tool} failed to start (${e.message})`, 'failed'));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killed === 'timeout')
        return reject(new DecoderError(`${tool} took longer than ${limits.timeoutMs} ms and was stopped`, 'timeout'));
      if (killed === 'output')
        return reject(new DecoderError(`${tool} wrote more than ${limits.maxOutputBytes} bytes`, 'output'));
      if (code === 0) return resolve(Buffer.concat(chunks));
      const line =
        err
          .trim()
          .split('\n')
          .find((l) => l.trim() !== '') ?? '';
      // SIGXCPU / SIGKILL from prlimit, or an allocation refused under the address-space cap.
      reject(new DecoderError(`${tool} failed (${signal ?? `exit ${code}`}${line ? `: ${line}` : ''})`, 'failed'));
    });
  });
}

/** Reads an output file a decoder wrote into its directory, refusing one over `max` bytes. */
export async function readOutput(path: string, max: number): Promise<Buffer> {
  const st = await stat(path).catch(() => null);
  if (!st || !st.isFile()) throw new DecoderError('the decoder wrote no output', 'failed');
  if (st.size > max) throw new DecoderError(`the decoder wrote ${st.size} bytes, over ${max}`, 'output');
  return readFile(path);
}
