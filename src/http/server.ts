import type { us_listen_socket } from 'uWebSockets.js';
import { loadUws } from './uws.js';
import { InFlightRequests } from './in-flight.js';
import { createRequestHandler, type RequestHandlerOptions } from './handle-request.js';
import { request as requestInProcess, type InProcessInput, type InProcessOptions } from './in-process.js';

export interface HttpServerOptions extends RequestHandlerOptions {
  bindAddress: string;
  port: number;
}

export interface HttpServer {
  readonly port: number;
  /** Stops accepting connections; in-flight requests continue, and requests that still
   * arrive on open connections are answered with Connection: close. */
  stopListening(): void;
  inFlight(): number;
  /** Logs every request still running (cut off), then force-closes every connection. */
  closeAll(): void;
  /** One request through the same handler as the socket's, without a socket (tests, tools). */
  request(input: InProcessInput, options?: InProcessOptions): Promise<Response>;
}

// The only module that touches uWS itself: the listener. What happens to each request is
// handle-request.ts.
export function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const uws = loadUws();
  const app = uws.App();
  const active = new InFlightRequests();
  let draining = false;
  const handle = createRequestHandler(opts, active, () => draining);
  app.any('/*', handle);

  return new Promise((resolve, reject) => {
    app.listen(opts.bindAddress, opts.port, (sock: us_listen_socket | false) => {
      if (!sock) {
        reject(new Error(`could not listen on ${opts.bindAddress}:${opts.port} (address in use or not permitted)`));
        return;
      }
      let listenSocket: us_listen_socket | null = sock;
      resolve({
        port: uws.us_socket_local_port(sock),
        stopListening() {
          if (listenSocket) uws.us_listen_socket_close(listenSocket);
          listenSocket = null;
          draining = true;
        },
        inFlight: () => active.size,
        closeAll() {
          active.logCutOff(opts.log);
          const closable = app as unknown as { close?: () => void };
          closable.close?.();
        },
        request: (input, options) => requestInProcess(handle, input, options),
      });
    });
  });
}
