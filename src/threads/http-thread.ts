import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { LoadedConfig } from '../config/schema.js';
import { createLogger } from '../logging/logger.js';
import { startMediaRepo, type RunningRepo } from '../main.js';
import { dbOverChannel } from './db-channel.js';
import { ThreadBus } from './bus.js';
import { SharedLocks } from './shared-locks.js';
import { PoolsOverChannel } from './shared-pools.js';
import type { ThreadData, ToHost, ToThread } from './thread-messages.js';

// One HTTP thread (repo.httpThreads > 1): its own uWS app on the process's port and the whole
// request path, with what must stay one per process (the embedded database, upload sinks,
// image and preview pools, background tasks, the metrics listener, the config watcher) reached
// on the main thread through the ports in workerData. Started and stopped by host.ts.

const data = workerData as ThreadData;
const host = parentPort!;
const post = (m: ToHost, transfer: MessagePort[] = []) => host.postMessage(m, transfer);

const config = data.config as LoadedConfig;
const g = config.global;
const log = createLogger({
  level: g.repo.logLevel,
  json: g.repo.jsonLogs,
  sink: (line) => post({ type: 'log', line }),
}).child({ thread: data.index });

const sinkWaiters = new Map<number, (port: MessagePort) => void>();
let repo: RunningRepo | null = null;

// A thread that throws where nothing catches must not leave the process half serving: it closes
// its listener and connections (uWS handles left open abort the whole process at thread exit),
// tells the main thread, which stops the server, and ends.
process.on('uncaughtException', (e) => {
  log.error('HTTP thread failed', { error: e });
  post({ type: 'fatal', message: e.stack ?? e.message });
  repo?.internal.closeNow();
  process.exit(1);
});

host.on('message', (m: ToThread) => {
  switch (m.type) {
    case 'config':
      void repo?.internal.apply(m.config as LoadedConfig, m.restartKeys);
      return;
    case 'shutting-down':
      if (repo) repo.services.state.shuttingDown = true;
      return;
    case 'stop':
      void (repo?.stop({ graceMs: 0, drainMs: m.drainMs }) ?? Promise.resolve()).then(
        () => {
          post({ type: 'stopped' });
          host.close();
        },
        (e: Error) => post({ type: 'fatal', message: `stop failed: ${e.message}` }),
      );
      return;
    case 'metrics':
      void (repo?.internal.metricsJson() ?? Promise.resolve([] as unknown[])).then((json) =>
        post({ type: 'metrics', id: m.id, json }),
      );
      return;
    case 'sink-port':
      sinkWaiters.get(m.index)?.(m.port);
      sinkWaiters.delete(m.index);
      return;
    case 'crash-for-test':
      setImmediate(() => {
        throw new Error('crash requested by a test');
      });
      return;
  }
});

startMediaRepo({
  config,
  log,
  port: data.port,
  runMigrations: false,
  thread: {
    index: data.index,
    count: data.count,
    bus: new ThreadBus(data.busId),
    locks: new SharedLocks(data.lockMemory, data.index),
    bucketMemory: data.bucketMemory,
    db: data.dbPort ? dbOverChannel(data.dbPort, 'pglite') : null,
    sinks: {
      ports: data.sinkPorts,
      reconnect: (index: number) =>
        new Promise<MessagePort>((resolve) => {
          sinkWaiters.set(index, resolve);
          post({ type: 'sink-port', index });
        }),
    },
    pools: new PoolsOverChannel(data.poolsPort, data.poolStats),
    wakeTasks: () => post({ type: 'wake-tasks' }),
  },
}).then(
  (started) => {
    repo = started;
    post({ type: 'ready' });
  },
  (e: Error) => {
    post({ type: 'failed', message: e.message });
    host.close();
  },
);
