#!/usr/bin/env node
// Cold remote fetch: a 50 MiB file uploaded to media-repo A, downloaded by a client from
// media-repo B, which fetches it from A over federation (signed v1, multipart) and streams it
// to the client while storing it. Baseline in the same run: the client downloading the same
// file directly from A. Reports time to first byte and total time at the client. Two more
// baselines show where the cost of B's hop lies: the same download through a pipe-only Node
// proxy in front of A's front (the floor for any Node process in the path, storing nothing),
// and the warm download from B once the file is stored there.
//
//   node bench/remote.mjs [--size-mib 50] [--reps 3] [--postgres DSN] [--cpu-prof (of B)]
//   npm run bench -- remote-cold     (the same, as a scenario of bench/run.mjs)
//
// Each homeserver is fronted by a small proxy in this process that publishes its signing key
// (as a homeserver does after `media-repo combine-signing-keys`); both the federation fetch and
// the direct baseline pass through A's front, so it costs both sides the same.
import { parseArgs } from 'node:util';
import http from 'node:http';
import { startRssSampler } from './lib/rss.mjs';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { ROOT, ensureBuilt, startOurRepo } from './lib/repo.mjs';
import { installCleanup, stopAll } from './lib/proc.mjs';
import { printProfiles } from './lib/profile.mjs';
import { machineInfo, median, printTable, ratio, round, writeResult } from './lib/report.mjs';

export const REMOTE_SCENARIOS = ['remote-cold'];

// dist/'s signing-key helpers, loaded on first use (dist/ may be built only just before).
let signing;

/** A homeserver front: publishes the key, forwards every other request to its media repo. */
async function front(key) {
  const f = await pipeProxy();
  const state = f.state;
  f.onKey = () => {
    const doc = signing.signJson(
      {
        server_name: state.name,
        valid_until_ts: Date.now() + 3600_000,
        verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } },
        old_verify_keys: {},
      },
      state.name,
      key,
    );
    return JSON.stringify(doc);
  };
  return f;
}

/** Forwards every request to `state.target` with Node's http on both sides (or answers keys). */
async function pipeProxy() {
  const state = { name: '', target: 0 };
  const self = { state, server: null, onKey: null };
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    if (self.onKey && req.url.startsWith('/_matrix/key/v2/server')) {
      return res.writeHead(200, { 'Content-Type': 'application/json' }).end(self.onKey());
    }
    const up = http.request(
      { host: '127.0.0.1', port: state.target, method: req.method, path: req.url, headers: req.headers, agent },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.name = `127.0.0.1:${server.address().port}`;
  self.server = server;
  return self;
}

async function startHomeserver(label, { workDir, postgres, size, cpuProf = false }) {
  const key = signing.generateSigningKey();
  const f = await front(key);
  const keyFile = join(workDir, `${label}.key`);
  writeFileSync(keyFile, signing.formatSigningKeys([key], 'synapse'), { mode: 0o600 });
  const repo = await startOurRepo(join(workDir, label), {
    postgres,
    cpuProf,
    overrides: [
      `homeservers=[{name: "${f.state.name}", csApi: "http://127.0.0.1:9/", signingKeyPath: "${keyFile}"}]`,
      'federation.allowedNetworks=["127.0.0.1/32"]',
      `downloads.maxBytes=${size * 2}`,
      'thumbnails.pregenerate=false',
    ],
  });
  f.state.target = Number(new URL(repo.url).port);
  return { name: f.state.name, repo, front: f.server };
}

/** GET through a Host-named URL; resolves with time to first byte and total, bytes counted. */
function timedGet(port, host, path, token) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ttfb = null;
    let bytes = 0;
    const req = http.request(
      { host: '127.0.0.1', port, path, headers: { Host: host, Authorization: `Bearer ${token}` } },
      (res) => {
        res.on('data', (c) => {
          if (ttfb === null) ttfb = performance.now() - t0;
          bytes += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode, ttfbMs: ttfb, totalMs: performance.now() - t0, bytes }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function upload(a, body, name) {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(a.repo.url).port);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/_matrix/media/v3/upload?filename=${name}`,
        headers: {
          Host: a.name,
          Authorization: `Bearer ${a.repo.token}`,
          'Content-Type': 'application/octet-stream',
          'Content-Length': body.length,
        },
      },
      (res) => {
        let s = '';
        res.on('data', (c) => (s += c));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(JSON.parse(s).content_uri.split('/').pop())
            : reject(new Error(`upload ${res.statusCode} ${s}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The remote-cold scenario. It needs two of our own instances, so against --target (someone
 * else's server, or ours started elsewhere) it is skipped. ctx: { external, reps, postgres,
 * workDir, cpuProf, sizeMiB, suffix }.
 */
export async function runRemote(ctx, scenarios) {
  if (!scenarios.includes('remote-cold')) return {};
  if (ctx.external) {
    console.log('\n== remote-cold: skipped (needs two media-repo instances started by the bench, not --target)');
    return {};
  }
  return { 'remote-cold': await remoteCold(ctx) };
}

async function remoteCold({ reps, postgres = '', workDir, cpuProf = false, sizeMiB = 50, suffix = '' }) {
  const size = Math.round(sizeMiB * 1024 * 1024);
  signing ??= await import(join(ROOT, 'dist', 'src', 'matrix', 'signing-keys.js'));
  const dir = join(workDir, 'remote');
  mkdirSync(dir, { recursive: true });
  // Plain-http federation between the two local repos; restored so later scenarios' servers
  // start as configured.
  const prevHttpOnly = process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION;
  process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION = 'true';
  let hop = null;
  const started = [];
  try {
    console.log(
      `\n== remote-cold: ${sizeMiB} MiB, cold fetch through B over federation vs direct from A, ${reps} runs`,
    );
    const a = await startHomeserver('a', { workDir: dir, postgres, size });
    started.push(a);
    const b = await startHomeserver('b', { workDir: dir, postgres, size, cpuProf });
    started.push(b);
    const aFront = Number(a.name.split(':')[1]);
    const bPort = Number(new URL(b.repo.url).port);
    const body = randomBytes(size);
    hop = await pipeProxy();
    hop.state.target = aFront;
    const hopPort = Number(hop.state.name.split(':')[1]);
    const runs = { direct: [], proxied: [], remote: [], warm: [] };
    // B's RSS over every run: the cold fetch streams through it while it stores the copy.
    const sampler = startRssSampler([b.repo.pid]);
    for (let i = 0; i < reps; i++) {
      const id = await upload(a, body, `r${i}.bin`);
      const path = (server) => `/_matrix/client/v1/media/download/${server}/${id}`;
      // Alternate the order so neither side always runs on a warmer page cache.
      // The warm run needs the cold one before it.
      const order = i % 2 === 0 ? ['direct', 'proxied', 'remote', 'warm'] : ['remote', 'warm', 'proxied', 'direct'];
      for (const which of order) {
        // B stores the file after the client has it (fsync, rename, row): let that finish, so the
        // warm figure is a download from storage and not a wait for the store.
        if (which === 'warm') await new Promise((r) => setTimeout(r, 1000));
        const r =
          which === 'direct'
            ? await timedGet(aFront, a.name, path(a.name), a.repo.token)
            : which === 'proxied'
              ? await timedGet(hopPort, a.name, path(a.name), a.repo.token)
              : await timedGet(bPort, b.name, path(a.name), b.repo.token);
        if (r.status !== 200 || r.bytes !== size)
          throw new Error(`${which}: status ${r.status}, ${r.bytes} of ${size} bytes`);
        runs[which].push(r);
        console.log(
          `  run ${i + 1} ${which}: first byte ${round(r.ttfbMs)} ms, total ${round(r.totalMs)} ms (${round(size / 1048576 / (r.totalMs / 1000))} MiB/s)`,
        );
      }
    }
    const bRss = await sampler.stop();
    const med = (k, f) => median(runs[k].map((r) => r[f]));
    const summary = { sizeMiB, peakRssMiBofB: round(bRss.peakBytes / 1048576) };
    for (const k of ['direct', 'proxied', 'remote', 'warm'])
      summary[k] = { ttfbMs: round(med(k, 'ttfbMs')), totalMs: round(med(k, 'totalMs')) };
    summary.totalRatio = ratio(summary.remote.totalMs, summary.direct.totalMs);
    summary.proxiedRatio = ratio(summary.proxied.totalMs, summary.direct.totalMs);
    summary.warmRatio = ratio(summary.warm.totalMs, summary.direct.totalMs);
    summary.ttfbShareOfTotal = ratio(summary.remote.ttfbMs, summary.remote.totalMs);
    printTable(
      `remote-cold (median of ${reps}; target: total within 1.2x of direct, first byte well before the end)`,
      ['path', 'first byte ms', 'total ms', 'ratio to direct'],
      [
        ['direct from A (through its front)', summary.direct.ttfbMs, summary.direct.totalMs, '-'],
        [
          'through a pipe-only Node proxy (no storing)',
          summary.proxied.ttfbMs,
          summary.proxied.totalMs,
          summary.proxiedRatio,
        ],
        ['cold, through B over federation', summary.remote.ttfbMs, summary.remote.totalMs, summary.totalRatio],
        ['warm, stored on B', summary.warm.ttfbMs, summary.warm.totalMs, summary.warmRatio],
      ],
    );
    console.log(`B's peak RSS over the runs: ${summary.peakRssMiBofB} MiB`);
    const file = writeResult('remote-cold', { reps, summary, runs }, suffix);
    console.log(`wrote ${file}`);
    return summary;
  } finally {
    hop?.server?.close();
    for (const h of started) {
      h.front.close();
      await h.repo.stop().catch(() => {});
    }
    if (prevHttpOnly === undefined) delete process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION;
    else process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION = prevHttpOnly;
  }
}

// Standalone CLI, as before the scenario existed.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: opt } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '50' },
      reps: { type: 'string', default: '3' },
      postgres: { type: 'string', default: '' },
      'cpu-prof': { type: 'boolean', default: false },
    },
  });
  ensureBuilt();
  installCleanup();
  const workDir = join(ROOT, 'bench', '.work', `remote-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  let failed = false;
  try {
    const m = machineInfo();
    console.log(
      `remote fetch bench: ${m.cpus} cores (${m.cpuModel}), node ${m.node}; ${opt['size-mib']} MiB, ${opt.reps} reps`,
    );
    await remoteCold({
      reps: Math.max(1, Number(opt.reps)),
      postgres: opt.postgres,
      workDir,
      cpuProf: opt['cpu-prof'],
      sizeMiB: Number(opt['size-mib']),
      suffix: opt.postgres ? 'postgres' : '',
    });
  } catch (e) {
    failed = true;
    console.error(e);
  } finally {
    await stopAll();
    if (opt['cpu-prof']) printProfiles(join(workDir, 'remote', 'b', 'prof'));
  }
  process.exit(failed ? 1 : 0);
}
