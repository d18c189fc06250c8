// `node dist/src/healthcheck.js [-config PATH]`: exits 0 when this instance's /healthz answers
// 200, else 1. The Docker image's HEALTHCHECK runs it. It finds the port the way the server
// does (-config, else REPO_CONFIG, else the defaults), so a changed repo.port or bindAddress
// does not turn a healthy container unhealthy. Kept apart from cli.ts: it must start fast and
// load nothing native.
import { request } from 'node:http';
import { pathToFileURL } from 'node:url';
import { resolveConfigPath } from './config/args.js';
import { defaultConfig } from './config/defaults.js';
import { loadConfig } from './config/load.js';

export interface HealthTarget {
  host: string;
  port: number;
}

/** A wildcard bind accepts loopback connections; anything else is dialled as configured. */
export function healthTarget(repo: { bindAddress: string; port: number }): HealthTarget {
  const host =
    repo.bindAddress === '0.0.0.0' || repo.bindAddress === ''
      ? '127.0.0.1'
      : repo.bindAddress === '::'
        ? '::1'
        : repo.bindAddress;
  return { host, port: repo.port };
}

/** True when GET /healthz answers 200 within timeoutMs. */
export function probe(target: HealthTarget, timeoutMs = 3000): Promise<boolean> {
  return new Promise((done) => {
    const req = request({ host: target.host, port: target.port, path: '/healthz', timeout: timeoutMs }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
    req.end();
  });
}

async function main(): Promise<void> {
  const path = resolveConfigPath(process.argv.slice(2), process.env);
  // Without a config the server runs on embedded defaults; loading those would create the
  // shared-secret file, which a health probe must not do.
  const repo = path === undefined ? defaultConfig().repo : (await loadConfig(path)).global.repo;
  const target = healthTarget(repo);
  const ok = await probe(target);
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  if (!ok) console.error(`media-repo healthcheck: no 200 from http://${host}:${target.port}/healthz`);
  process.exit(ok ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: Error) => {
    console.error(`media-repo healthcheck: ${e.message}`);
    process.exit(1);
  });
}
