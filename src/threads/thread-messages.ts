import type { MessagePort } from 'node:worker_threads';

// What the main thread (host.ts) and an HTTP thread (http-thread.ts) say to each other on the
// thread's parent port. Pools, database and sinks have their own ports (shared-pools.ts,
// db-channel.ts, the sink workers'), so this one carries only control, logs and metrics.

export interface ThreadData {
  index: number;
  count: number;
  /** The port the main thread listens on (it bound first: a configured 0 is resolved). */
  port: number;
  /** LoadedConfig, structured-cloned. */
  config: unknown;
  busId: string;
  lockMemory: SharedArrayBuffer;
  bucketMemory: SharedArrayBuffer;
  poolStats: SharedArrayBuffer;
  /** The embedded database's channel; null with Postgres (each thread has its own pool). */
  dbPort: MessagePort | null;
  poolsPort: MessagePort;
  sinkPorts: MessagePort[];
}

export type ToThread =
  | { type: 'config'; config: unknown; restartKeys: string[] }
  | { type: 'shutting-down' }
  | { type: 'stop'; drainMs: number }
  | { type: 'metrics'; id: number }
  | { type: 'sink-port'; index: number; port: MessagePort }
  | { type: 'crash-for-test' };

export type ToHost =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'fatal'; message: string }
  | { type: 'stopped' }
  | { type: 'log'; line: string }
  | { type: 'metrics'; id: number; json: unknown[] }
  | { type: 'sink-port'; index: number }
  | { type: 'wake-tasks' };
