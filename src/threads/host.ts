import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { LoadedConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Db } from '../db/driver.js';
import type { UploadSinkPool } from '../pools/upload-sink.js';
import { serveDb } from './db-channel.js';
import { poolStatsMemory, publishPoolStats, servePools, type ServedPools } from './shared-pools.js';
import type { ThreadData, ToHost, ToThread } from './thread-messages.js';

// The main thread's side of repo.httpThreads: starts the other HTTP threads once its own
// listener is bound (they listen on the same port), serves them the one-per-process parts over
// ports, and carries reloads, shutdown and metrics scrapes to them. A thread that dies is not
// restarted: the server is then told (onFailure), turns /readyz to 503 and stops, and the
// command line exits non-zero, so a supervisor restarts the whole process rather than a
// half-serving one staying up.

const ENTRY = new URL('./http-thread.js', import.meta.url);
/** A thread that has not exited this long after saying it stopped is terminated. */
const EXIT_GRACE_MS = 2000;

export interface HostOptions {
  count: number;
  port: number;
  config: LoadedConfig;
  log: Logger;
  busId: string;
  lockMemory: SharedArrayBuffer;
  bucketMemory: SharedArrayBuffer;
  db: Db;
  sinks: UploadSinkPool;
  pools: ServedPools;
  wakeTasks(): void;
  onFailure(e: Error): void;
}

export interface HttpThreads {
  /** Threads started here (the main thread serves too: count - 1). */
  readonly started: number;
  reload(next: LoadedConfig, restartKeys: string[]): void;
  /** /readyz answers 503 on every thread from now on. */
  shuttingDown(): void;
  /** Each thread stops listening, drains for up to drainMs and closes; resolves once all ended. */
  stop(drainMs: number): Promise<void>;
  /** Every thread's registry as JSON, for AggregatorRegistry. */
  metricsJson(): Promise<unknown[][]>;
  /** Tests only: makes thread `i` (1-based) throw where nothing catches. */
  crashForTest(i: number): void;
}

interface Thread {
  index: number;
  worker: Worker;
  exited: Promise<void>;
  stopped: boolean;
  closePorts(): void;
}

export async function startHttpThreads(o: HostOptions): Promise<HttpThreads> {
  const threads: Thread[] = [];
  const poolStats = poolStatsMemory();
  const stopStats = publishPoolStats(o.pools.thumbnails, poolStats);
  const scrapes = new Map<number, (json: unknown[]) => void>();
  let nextScrape = 0;
  let stopping = false;
  let failed = false;

  const fail = (t: Thread, why: string) => {
    if (failed || stopping) return;
    failed = true;
    const e = new Error(`HTTP thread ${t.index} failed: ${why}`);
    o.log.error('an HTTP thread died; the server stops (a supervisor restarts the process)', {
      thread: t.index,
      reason: why,
    });
    o.onFailure(e);
  };

  const spawn = (index: number): Promise<Thread> => {
    const ports: MessagePort[] = [];
    let dbPort: MessagePort | null = null;
    const closers: (() => void)[] = [];
    if (o.db.kind === 'pglite') {
      const ch = new MessageChannel();
      closers.push(serveDb(o.db, ch.port1).close);
      dbPort = ch.port2;
      ports.push(ch.port2);
    }
    const poolsCh = new MessageChannel();
    closers.push(servePools(poolsCh.port1, o.pools));
    const sinkPorts = o.sinks.attach();
    ports.push(poolsCh.port2, ...sinkPorts);
    const data: ThreadData = {
      index,
      count: o.count,
      port: o.port,
      config: o.config,
      busId: o.busId,
      lockMemory: o.lockMemory,
      bucketMemory: o.bucketMemory,
      poolStats,
      dbPort,
      poolsPort: poolsCh.port2,
      sinkPorts,
    };
    const worker = new Worker(ENTRY, { workerData: data, transferList: ports });
    const t: Thread = {
      index,
      worker,
      stopped: false,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
      closePorts: () => {
        for (const c of closers.splice(0)) c();
      },
    };
    return new Promise<Thread>((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: ToHost) => {
        switch (m.type) {
          case 'ready':
            ready = true;
            return resolve(t);
          case 'failed':
            return reject(new Error(`HTTP thread ${index} could not start: ${m.message}`));
          case 'fatal':
            return fail(t, m.message);
          case 'stopped':
            t.stopped = true;
            // Its listener and connections are closed: a loop that does not end by itself is ended.
            setTimeout(() => void worker.terminate(), EXIT_GRACE_MS).unref();
            return;
          case 'log':
            return o.log.relay(m.line);
          case 'metrics':
            scrapes.get(m.id)?.(m.json);
            return;
          case 'sink-port': {
            const port = o.sinks.attachOne(m.index);
            worker.postMessage({ type: 'sink-port', index: m.index, port } satisfies ToThread, [port]);
            return;
          }
          case 'wake-tasks':
            return o.wakeTasks();
        }
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
        else fail(t, e.message);
      });
      worker.on('exit', (code) => {
        t.closePorts();
        if (!ready) reject(new Error(`HTTP thread ${index} exited with code ${code} while starting`));
        else if (!t.stopped) fail(t, `exited with code ${code}`);
      });
    });
  };

  const send = (m: ToThread) => {
    for (const t of threads) t.worker.postMessage(m);
  };

  const stopAll = async (drainMs: number) => {
    stopping = true;
    send({ type: 'stop', drainMs });
    await Promise.all(
      threads.map(async (t) => {
        // The drain, the thread's own close, then a grace for its event loop to end.
        const limit = setTimeout(() => void t.worker.terminate(), drainMs + 10_000);
        await t.exited;
        clearTimeout(limit);
        t.closePorts();
      }),
    );
    stopStats();
  };

  const settled = await Promise.allSettled(Array.from({ length: o.count - 1 }, (_, i) => spawn(i + 1)));
  for (const s of settled) if (s.status === 'fulfilled') threads.push(s.value);
  const refused = settled.find((s) => s.status === 'rejected');
  if (refused) {
    await stopAll(0);
    throw (refused as PromiseRejectedResult).reason;
  }

  return {
    started: threads.length,
    reload: (next, restartKeys) => send({ type: 'config', config: next, restartKeys }),
    shuttingDown: () => send({ type: 'shutting-down' }),
    stop: stopAll,
    metricsJson: () =>
      Promise.all(
        threads.map(
          (t) =>
            new Promise<unknown[]>((resolve) => {
              const id = ++nextScrape;
              const timer = setTimeout(() => {
                scrapes.delete(id);
                resolve([]); // a busy thread's figures are left out of this scrape, not the scrape itself
              }, 2000);
              scrapes.set(id, (json) => {
                clearTimeout(timer);
                scrapes.delete(id);
                resolve(json);
              });
              t.worker.postMessage({ type: 'metrics', id } satisfies ToThread);
            }),
        ),
      ),
    crashForTest: (i) => threads[i - 1]?.worker.postMessage({ type: 'crash-for-test' } satisfies ToThread),
  };
}

/** The metrics page of the whole process: the main thread's registry and every HTTP thread's. */
export async function aggregatedMetrics(registry: Registry, threads: HttpThreads): Promise<string> {
  const all = [await registry.getMetricsAsJSON(), ...(await threads.metricsJson())];
  return AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}
