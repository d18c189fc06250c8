// Load generators: autocannon (programmatic) for small bodies, wrk for large ones.
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';

/** Does this autocannon take `workers` (worker threads)? v7.3+ does. */
export const AUTOCANNON_WORKERS = 2;

/**
 * autocannon at `connections`, `durationS`. Returns { reqPerSec, bytesPerSec (all bytes read),
 * non2xx, errors, timeouts, latencyP50, latencyP99, workers }.
 */
export async function runAutocannon({ url, headers, connections = 64, durationS = 10, workers = AUTOCANNON_WORKERS }) {
  const opts = { url, headers, connections, pipelining: 1, duration: durationS };
  if (workers) opts.workers = workers;
  let r;
  try {
    r = await autocannon(opts);
  } catch (e) {
    if (!workers) throw e;
    console.log(`  autocannon with workers: ${workers} failed (${e.message}); running without workers`);
    return runAutocannon({ url, headers, connections, durationS, workers: 0 });
  }
  return {
    tool: 'autocannon',
    workers: workers || 0,
    reqPerSec: r.requests.average,
    bytesPerSec: r.throughput.average,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    latencyP50: r.latency.p50,
    latencyP99: r.latency.p99,
  };
}

function parseDuration(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60000 }[m[2]];
}

function parseSize(s) {
  const m = /^([\d.]+)([KMGT]?B)$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[m[2]];
}

/** wrk -t<threads> -c<connections> -d<durationS>s; parses its summary. */
export function runWrk({ url, headers = {}, threads = 2, connections = 64, durationS = 10 }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${durationS}s`, '--latency'];
  // wrk adds its own Host unless it sees exactly "Host" (case-sensitive): two Hosts are a 400.
  const canon = (k) =>
    k
      .split('-')
      .map((w) => w[0].toUpperCase() + w.slice(1).toLowerCase())
      .join('-');
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${canon(k)}: ${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      if (code !== 0 || !rps) return reject(new Error(`wrk failed (${code}):\n${out}`));
      const transfer = /Transfer\/sec:\s+(\S+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const p50 = /^\s+50%\s+(\S+)/m.exec(out);
      const p99 = /^\s+99%\s+(\S+)/m.exec(out);
      resolve({
        tool: 'wrk',
        threads,
        reqPerSec: Number(rps[1]),
        bytesPerSec: transfer ? parseSize(transfer[1]) : null,
        non2xx: non2xx ? Number(non2xx[1]) : 0,
        errors: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) : 0,
        timeouts: sock ? Number(sock[4]) : 0,
        latencyP50: p50 ? parseDuration(p50[1]) : null,
        latencyP99: p99 ? parseDuration(p99[1]) : null,
      });
    });
  });
}
