import { createServer, connect, type Socket } from 'node:net';

/** A TCP proxy in front of a server, to make it hang (bytes swallowed) or vanish mid-test. */
export interface TcpProxy {
  port: number;
  /** Keep connections open but forward nothing: the far end looks alive and never answers. */
  stall(): void;
  /** Forward again. Bytes swallowed meanwhile are lost: connections that carried them are desynchronised. */
  resume(): void;
  /** Connections still open that had bytes swallowed while stalled (their owner should have dropped them). */
  stalledOpen(): number;
  /** Stop listening and cut every connection: nothing listens at `port` any more. */
  kill(): Promise<void>;
}

export async function startTcpProxy(host: string, port: number, listenPort = 0): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let stalled = false;
  const swallowed = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, host);
    client.on('close', () => swallowed.delete(client));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (d) => (stalled ? swallowed.add(client) : upstream.write(d)));
    upstream.on('data', (d) => (stalled ? swallowed.add(client) : client.write(d)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    stall() {
      stalled = true;
    },
    resume() {
      stalled = false;
    },
    stalledOpen: () => swallowed.size,
    kill() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      return closed;
    },
  };
}
