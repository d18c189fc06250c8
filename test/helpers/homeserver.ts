import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A small stand-in homeserver for the endpoints media-repo calls: whoami, versions, logout, the
// spec's admin whois and Synapse's admin API (user admin status, a room's media, the user
// list), each answered with Synapse's rules. A fixture, not a mock of our code: media-repo talks
// to it over real HTTP.

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
  /** User IDs that are server admins. */
  admins: Set<string>;
  /** Room ID → the media Synapse's GET /_synapse/admin/v1/room/{roomId}/media lists. */
  roomMedia: Map<string, { local: string[]; remote: string[] }>;
  /** User ID → avatar mxc URI, listed by GET /_synapse/admin/v2/users (with the token users). */
  avatars: Map<string, string>;
  /** Requests to the admin endpoints (whois and /_synapse/admin), answered or refused. */
  adminCalls: number;
  close(): Promise<void>;
}

const serverOf = (userId: string) => userId.slice(userId.indexOf(':') + 1);

export async function startFixtureHomeserver(): Promise<FixtureHomeserver> {
  const hs: FixtureHomeserver = {
    url: '',
    tokens: new Map(),
    whoamiCalls: 0,
    delayMs: 0,
    failWith: null,
    lastHeaders: {},
    admins: new Set(),
    roomMedia: new Map(),
    avatars: new Map(),
    adminCalls: 0,
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
    if (
      req.method === 'GET' &&
      (url.pathname.startsWith('/_synapse/admin/') || /\/admin\/whois\//.test(url.pathname))
    ) {
      hs.adminCalls++;
      if (!user) return send(res, 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' });
      return admin(res, url, user.userId);
    }
    send(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized' });
  };
  const forbidden = (res: ServerResponse) =>
    send(res, 403, { errcode: 'M_FORBIDDEN', error: 'You are not a server admin' });
  const notLocal = (res: ServerResponse) =>
    send(res, 400, { errcode: 'M_UNKNOWN', error: 'Can only look up local users' });
  // Synapse's rules: whois of oneself is open to anyone, of another user to admins only; the
  // /_synapse/admin endpoints are admin-only; users of other servers are a 400.
  const admin = (res: ServerResponse, url: URL, caller: string) => {
    const isAdmin = hs.admins.has(caller);
    const whois = /^\/_matrix\/client\/(?:r0|v3)\/admin\/whois\/([^/]+)$/.exec(url.pathname);
    if (whois) {
      const target = decodeURIComponent(whois[1]!);
      if (target !== caller && !isAdmin) return forbidden(res);
      if (serverOf(target) !== serverOf(caller)) return notLocal(res);
      return send(res, 200, { user_id: target, devices: {} });
    }
    if (!isAdmin) return forbidden(res);
    const status = /^\/_synapse\/admin\/v1\/users\/([^/]+)\/admin$/.exec(url.pathname);
    if (status) {
      const target = decodeURIComponent(status[1]!);
      if (serverOf(target) !== serverOf(caller)) return notLocal(res);
      return send(res, 200, { admin: hs.admins.has(target) });
    }
    const room = /^\/_synapse\/admin\/v1\/room\/([^/]+)\/media$/.exec(url.pathname);
    if (room) {
      const media = hs.roomMedia.get(decodeURIComponent(room[1]!));
      return media ? send(res, 200, media) : send(res, 404, { errcode: 'M_NOT_FOUND', error: 'Room not found' });
    }
    if (url.pathname === '/_synapse/admin/v2/users') {
      const ids = [...new Set([...[...hs.tokens.values()].map((u) => u.userId), ...hs.avatars.keys()])].sort();
      const from = Number(url.searchParams.get('from') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const page = ids.slice(from, from + limit);
      const users = page.map((name) => ({
        name,
        admin: hs.admins.has(name),
        avatar_url: hs.avatars.get(name) ?? null,
      }));
      const next = from + page.length < ids.length ? { next_token: String(from + page.length) } : {};
      return send(res, 200, { users, total: ids.length, ...next });
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
