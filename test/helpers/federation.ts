import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { formatSigningKeys, generateSigningKey, signJson, type SigningKey } from '../../src/matrix/signing-keys.js';
import { startTestRepo, type TestRepo } from './repo.js';
import type { DriverName } from './databases.js';

// A federating homeserver as tests need one: a front server at the server name's address that
// publishes the signing key (as a homeserver does after combine-signing-keys) and forwards
// every other /_matrix request to its media-repo, Host intact, as a reverse proxy would.

export interface FederatingServer {
  name: string;
  key: SigningKey;
  repo: TestRepo;
  front: Server;
  close(): Promise<void>;
}

function keyDocument(name: string, key: SigningKey): object {
  return signJson(
    {
      server_name: name,
      valid_until_ts: Date.now() + 3600_000,
      verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } },
      old_verify_keys: {},
    },
    name,
    key,
  );
}

function forward(target: number, req: IncomingMessage, res: ServerResponse): void {
  const up = request(
    { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => {
    res.writeHead(502).end();
  });
  req.pipe(up);
}

export async function startFederatingServer(
  driver: DriverName,
  overrides: Record<string, unknown> = {},
  opts: { signingKey?: boolean } = {},
): Promise<FederatingServer> {
  process.env.MEDIA_REPO_HTTP_ONLY_FEDERATION = 'true';
  let repoPort = 0;
  let name = '';
  const key = generateSigningKey();
  const front = createServer((req, res) => {
    if (req.url?.startsWith('/_matrix/key/v2/server')) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(keyDocument(name, key)));
      return;
    }
    forward(repoPort, req, res);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  name = `127.0.0.1:${(front.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'media-repo-key-'));
  const keyFile = join(dir, 'signing.key');
  writeFileSync(keyFile, formatSigningKeys([key], 'synapse'), { mode: 0o600 });
  const signingKeyPath = opts.signingKey === false ? undefined : keyFile;
  const repo = await startTestRepo(
    driver,
    { federation: { allowedNetworks: ['127.0.0.1/32'] }, ...overrides },
    { name, signingKeyPath },
  );
  repoPort = repo.port;
  return {
    name,
    key,
    repo,
    front,
    async close() {
      await repo.close();
      await new Promise<void>((r) => {
        front.closeAllConnections();
        front.close(() => r());
      });
    },
  };
}
