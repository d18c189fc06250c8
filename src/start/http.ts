import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { createDispatcher } from '../api/dispatch.js';
import { ROUTES } from '../api/routes.js';
import type { Services } from '../api/services.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { observeHttp } from '../metrics/http-metrics.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import type { Registry } from 'prom-client';
import { listenOnFreePort } from '../threads/free-port.js';

// Start-up step 7, http: the route table behind the listener, and the metrics listener.

export async function startHttp(
  config: () => LoadedConfig,
  log: Logger,
  svc: Services,
  port: number | undefined,
  metrics: { set: MediaMetrics; registry: Registry },
  /** An HTTP thread has no metrics listener; the main thread's may collect more than its own
   * registry (every thread's). */
  listener: {
    metrics: boolean;
    collect?: () => Promise<string>;
    sharedPort?: boolean;
    /** This HTTP thread's number and the count (request IDs unique across threads). */
    thread?: { index: number; count: number };
  } = { metrics: true },
): Promise<{ http: HttpServer; metricsServer: MetricsServer | null }> {
  const g = config().global;
  const dispatcher = createDispatcher(svc, ROUTES, listener.thread);
  const listen = (on: number) =>
    startHttpServer({
      bindAddress: g.repo.bindAddress,
      port: on,
      log,
      wantsBody: dispatcher.wantsBody,
      dispatch: dispatcher.dispatch,
      observe: observeHttp(metrics.set),
    });
  const wanted = port ?? g.repo.port;
  // Port 0 with other HTTP threads to come: a free port they can share (see free-port.ts).
  const http =
    wanted === 0 && listener.sharedPort ? await listenOnFreePort(g.repo.bindAddress, listen) : await listen(wanted);
  let metricsServer: MetricsServer | null = null;
  if (g.metrics.enabled && listener.metrics) {
    try {
      metricsServer = await startMetricsServer(
        metrics.registry,
        g.metrics.bindAddress,
        g.metrics.port,
        listener.collect,
      );
    } catch (e) {
      http.stopListening();
      http.closeAll();
      throw e;
    }
    log.info('metrics listening', { address: g.metrics.bindAddress, port: metricsServer.port });
  }
  return { http, metricsServer };
}
