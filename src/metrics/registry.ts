import { Registry, collectDefaultMetrics } from 'prom-client';

// One registry per running server (tests run several in one process, so nothing is global).
// The process and Node collectors come from prom-client: CPU, RSS, heap, GC, handles, and the
// event loop's delay (nodejs_eventloop_lag_*: its histogram restarts at every scrape, so p99 is
// "since the last scrape").
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  return registry;
}
