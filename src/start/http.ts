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

// Start-up step 7, http: the route table behind the listener, and the metrics listener.

export async function startHttp(
  config: () => LoadedConfig,
  log: Logger,
  svc: Services,
  port: number | undefined,
  metrics: { set: MediaMetrics; registry: Registry },
): Promise<{ http: HttpServer; metricsServer: MetricsServer | null }> {
  const g = config().global;
  const dispatcher = createDispatcher(svc, ROUTES);
  const http = await startHttpServer({
    bindAddress: g.repo.bindAddress,
    port: port ?? g.repo.port,
    log,
    wantsBody: dispatcher.wantsBody,
    dispatch: dispatcher.dispatch,
    observe: observeHttp(metrics.set),
  });
  let metricsServer: MetricsServer | null = null;
  if (g.metrics.enabled) {
    try {
      metricsServer = await startMetricsServer(metrics.registry, g.metrics.bindAddress, g.metrics.port);
    } catch (e) {
      http.stopListening();
      http.closeAll();
      throw e;
    }
    log.info('metrics listening', { address: g.metrics.bindAddress, port: metricsServer.port });
  }
  return { http, metricsServer };
}
