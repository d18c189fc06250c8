import { request, type IncomingHttpHeaders } from 'node:http';
import type { DriverName } from './databases.js';
import type { RunningRepo } from '../../src/main.js';
import { startFixtureHomeserver } from './homeserver.js';
import { ALICE, BOB, GUEST, startTestRepo, type TestRepo } from './repo.js';

// Helpers for suites where the Host header itself is under test (fetch() cannot set it)
// and for repos serving several homeserver names against one fixture homeserver.

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

export interface RawOptions {
  method?: string;
  path: string;
  /** Sent verbatim as the Host header. */
  host: string;
  headers?: Record<string, string>;
  token?: string;
  body?: Buffer | string;
}

/** One request over node:http with an explicit Host header and a fresh connection. */
export function rawRequest(port: number, o: RawOptions): Promise<RawResponse> {
  const headers: Record<string, string> = { ...o.headers, Host: o.host };
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(o.body));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const body = Buffer.concat(parts);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** As rawRequest, but in-process (RunningRepo.request): for tests where the socket does not matter. */
export async function requestRaw(repo: Pick<RunningRepo, 'request'>, o: RawOptions): Promise<RawResponse> {
  const headers: Record<string, string> = { ...o.headers, Host: o.host };
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  const res = await repo.request({ method: o.method ?? 'GET', url: o.path, headers, body: o.body });
  // Shaped as node:http shapes a response: lower-case names, set-cookie a list, the rest joined.
  const out: IncomingHttpHeaders = {};
  res.headers.forEach((v, k) => (out[k] = v));
  if (res.headers.has('set-cookie')) out['set-cookie'] = res.headers.getSetCookie();
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: out, body, json: <T>() => JSON.parse(body.toString('utf8')) as T };
}

/**
 * A test repo whose homeservers (all of `names`) point at one fixture homeserver started
 * first, so their csApi is known when the config is written. r.hs is that fixture.
 */
export async function startRepoWithHomeservers(
  driver: DriverName,
  names: string[],
  overrides: Record<string, unknown> = {},
): Promise<TestRepo> {
  const hs = await startFixtureHomeserver();
  hs.tokens.set(ALICE, { userId: '@alice:media.test' });
  hs.tokens.set(BOB, { userId: '@bob:media.test' });
  hs.tokens.set(GUEST, { userId: '@guest:media.test', isGuest: true });
  try {
    const r = await startTestRepo(driver, {
      ...overrides,
      homeservers: names.map((name) => ({ name, csApi: hs.url })),
    });
    return {
      ...r,
      hs,
      async close() {
        await r.close();
        await hs.close();
      },
    };
  } catch (e) {
    await hs.close();
    throw e;
  }
}
