import { createServer } from 'node:net';

// uWS sets SO_REUSEPORT only on a listener bound to a given port: one bound to port 0 gets an
// exclusive ephemeral port that the other HTTP threads then cannot share. With several threads
// a configured 0 (tests, tools) is first resolved to a free port here; the moment between this
// probe's close and uWS's bind is covered by trying again (listenOnFreePort).

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Runs `listen` on free ports until one binds (another process may take a probed port first). */
export async function listenOnFreePort<T>(host: string, listen: (port: number) => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await listen(await freePort(host));
    } catch (e) {
      if (i >= tries) throw e;
    }
  }
}
