import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A small stand-in homeserver for the endpoints media-repo calls: whoami, versions, logout.
// A fixture, not a mock of our code: media-repo talks to it over real HTTP.

export interface FixtureUser {
  userId: string;
  isGuest?: boolean;
  /** Appservice tokens may assert any user in this prefix via ?user_id=. */
  appserviceNamespace?: string;
}

export interface FixtureHomeserver {
  url: string;
  tokens: Map<string, FixtureUser>;
  whoamiCalls: number;
  /** Milliseconds to stall every answer (for timeout tests). */
  delayMs: number;
  /** When set, every answer is this HTTP status. */
  failWith: number | null;
  lastHeaders: Record<string, string | string[] | undefined>;
  close(): Promise<void>;
}

export async function startFixtureHomeserver(): Promise<FixtureHomeserver> {
  const hs: FixtureHomeserver = {
    url: '',
    tokens: new Map(),
    whoamiCalls: 0,
    delayMs: 0,
    failWith: null,
    lastHeaders: {},
    close: async () => undefined,
  };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    hs.lastHeaders = req.headers;
    if (hs.failWith) return send(res, hs.failWith, { errcode: 'M_UNKNOWN', error: 'fixture failure' });
    const url = new URL(req.url ?? '/', 'http://x');
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const user = token ? hs.tokens.get(token) : undefined;
    if (url.pathname === '/_matrix/client/versions')
      return send(res, 200, { versions: ['v1.1', 'v1.5'], unstable_features: { x: true } });
    if (url.pathname === '/_matrix/client/v3/account/whoami') {
      hs.whoamiCalls++;
      if (!user) return send(res, 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' });
      const asUser = url.searchParams.get('user_id');
      if (asUser) {
        if (!user.appserviceNamespace || !asUser.startsWith(user.appserviceNamespace)) {
          return send(res, 403, { errcode: 'M_EXCLUSIVE', error: 'not in namespace' });
        }
        return send(res, 200, { user_id: asUser, is_guest: false });
      }
      return send(res, 200, { user_id: user.userId, is_guest: user.isGuest === true, device_id: 'DEV' });
    }
    const logout = /^\/_matrix\/client\/(r0|v3)\/logout(\/all)?$/.exec(url.pathname);
    if (logout && req.method === 'POST') {
      if (!user || !token) return send(res, 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' });
      if (logout[2]) {
        for (const [t, u] of [...hs.tokens]) if (u.userId === user.userId) hs.tokens.delete(t);
      } else {
        hs.tokens.delete(token);
      }
      return send(res, 200, {});
    }
    send(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized' });
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (hs.delayMs) setTimeout(() => handle(req, res), hs.delayMs);
      else handle(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hs.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hs.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return hs;
}
