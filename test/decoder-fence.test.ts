import t from 'tap';
import { createServer } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecoderError, runFenced, sandboxKind, withWorkDir } from '../workers/image/external.js';

// The fence every external decoder runs in (workers/image/external.ts), proven with programs
// that try what a compromised decoder would: write outside its directory, reach the network,
// take memory, run forever, flood its output. Time, memory and output limits hold everywhere;
// the filesystem and network fence where bubblewrap works (as here and in CI, as root).

const LIMITS = { timeoutMs: 10_000, memoryBytes: 512 * 1024 * 1024, maxOutputBytes: 1024 * 1024 };
const node = process.execPath;

t.test('the time limit kills a decoder that runs on', async (t) => {
  await withWorkDir(async (dir) => {
    const started = Date.now();
    const err = await runFenced('sleep', ['30'], dir, { ...LIMITS, timeoutMs: 500 }).catch((e: unknown) => e);
    t.type(err, DecoderError);
    t.equal((err as DecoderError).reason, 'timeout');
    t.ok(Date.now() - started < 5000, 'stopped at once');
  });
});

t.test('the address-space limit refuses a decoder more memory', async (t) => {
  await withWorkDir(async (dir) => {
    // awk builds a string of n spaces: 10 MB fits under a 256 MiB cap, 1.5 GB does not.
    const program = (n: number) => `BEGIN { s = sprintf("%${n}s", ""); print length(s) }`;
    const cap = { ...LIMITS, memoryBytes: 256 * 1024 * 1024 };
    const small = await runFenced('awk', [program(10_000_000)], dir, cap);
    t.equal(small.toString().trim(), '10000000', 'under the cap it runs');
    const err = await runFenced('awk', [program(1_500_000_000)], dir, cap).catch((e: unknown) => e);
    t.type(err, DecoderError, 'over it the allocation fails');
    t.equal((err as DecoderError).reason, 'failed');
  });
});

t.test('output past its cap kills the decoder', async (t) => {
  await withWorkDir(async (dir) => {
    const err = await runFenced('sh', ['-c', 'while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done'], dir, {
      ...LIMITS,
      maxOutputBytes: 64 * 1024,
    }).catch((e: unknown) => e);
    t.equal((err as DecoderError).reason, 'output');
  });
});

t.test('inside bubblewrap: only its directory is writable, and there is no network', async (t) => {
  if (sandboxKind() !== 'bwrap') {
    t.comment(`fence here: ${sandboxKind()} (bubblewrap does not work on this machine)`);
    return;
  }
  const server = createServer((s) => s.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const outside = `/tmp/fence-escape-${process.pid}`;
  await withWorkDir(async (dir) => {
    const out = await runFenced(
      'sh',
      ['-c', `echo in > inside; echo out > ${outside} 2>/dev/null; echo out > /usr/escape 2>/dev/null; ls /; true`],
      dir,
      LIMITS,
    );
    t.equal(readFileSync(join(dir, 'inside'), 'utf8'), 'in\n', 'its own directory is writable');
    t.notOk(existsSync(outside), 'nothing was written to the real /tmp');
    t.notOk(existsSync('/usr/escape'), 'nor to /usr');
    t.notMatch(out.toString(), /\bhome\b|\broot\b|\bvar\b/, 'no /home, /root or /var inside');
    const probe = `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', (e) => { console.log(e.code); process.exit(3); })`;
    const err = await runFenced(node, ['-e', probe], dir, LIMITS).catch((e: unknown) => e);
    t.type(err, DecoderError, 'the host loopback cannot be reached from inside');
    const ok = await runFenced('true', [], dir, LIMITS);
    t.equal(ok.length, 0, 'and a well-behaved program runs');
  });
  // The same probe outside the fence connects: the refusal above is the fence's doing.
  const { execFileSync } = await import('node:child_process');
  t.doesNotThrow(() =>
    execFileSync(node, ['-e', `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0))`]),
  );
});
