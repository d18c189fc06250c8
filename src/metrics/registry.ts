import { Registry, collectDefaultMetrics } from 'prom-client';

// One registry per running server (tests run several in one process, so nothing is global).
// The process and Node collectors come from prom-client: CPU, RSS, heap, GC, handles, and the
// event loop's delay (nodejs_eventloop_lag_*: its histogram restarts at every scrape, so p99 is
// "since the last scrape").
// An HTTP thread's registry leaves them out: they describe the process (the main thread's
// cover it) and would be summed once per thread by the aggregation.
export function createRegistry(processCollectors = true): Registry {
  const registry = new Registry();
  if (processCollectors) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  return registry;
}
