import { LRUCache } from 'lru-cache';
import { Errors, MatrixError } from '../errors.js';
import type { ThreadBus } from '../threads/bus.js';
import { fromWire, toWire, type WireFailure } from '../threads/wire-error.js';

// Per-process memory of remote fetching: failures remembered per mxc, a circuit breaker per
// server (404 is an answer, not a failure), and a limit on fetches running at once. With
// several HTTP threads each holds a copy, kept the same over the threads' bus: a failure or an
// answer seen on one thread counts on all of them, and the fetch limit is split between them.

type Notice =
  | { kind: 'failure'; mxc: string; error: WireFailure; ttlMs: number }
  | { kind: 'server-failed'; server: string; backoffAt: number }
  | { kind: 'server-answered'; server: string };

const TOPIC = 'remote-state';

export class RemoteFetchState {
  private bus: ThreadBus | null = null;
  private threads = 1;

  /** How long an open breaker refuses before letting one request try again. */
  constructor(private readonly openMs = 60_000) {}

  /** Shares this state with the process's other HTTP threads (`threads` of them in all). */
  share(bus: ThreadBus, threads: number): void {
    this.bus = bus;
    this.threads = threads;
    bus.subscribe(TOPIC, (message) => {
      const n = JSON.parse(message) as Notice;
      if (n.kind === 'failure') this.failures.set(n.mxc, fromWire(n.error) as MatrixError, { ttl: n.ttlMs });
      else if (n.kind === 'server-failed') this.countFailure(n.server, n.backoffAt);
      else this.servers.delete(n.server);
    });
  }

  private tell(n: Notice): void {
    this.bus?.publish(TOPIC, JSON.stringify(n));
  }

  private readonly failures = new LRUCache<string, MatrixError>({ max: 50_000, ttlAutopurge: false });
  private readonly servers = new Map<string, { consecutive: number; openUntil: number }>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  rememberFailure(mxc: string, err: MatrixError, minutes: number): void {
    if (minutes <= 0) return;
    this.failures.set(mxc, err, { ttl: minutes * 60_000 });
    this.tell({ kind: 'failure', mxc, error: toWire(err), ttlMs: minutes * 60_000 });
  }

  recentFailure(mxc: string): MatrixError | undefined {
    return this.failures.get(mxc);
  }

  /** Throws 502 while the server's breaker is open. */
  checkServer(server: string): void {
    const s = this.servers.get(server);
    if (s && s.openUntil > Date.now())
      throw Errors.badGateway(`${server} has failed repeatedly; not asking it for a minute`);
  }

  serverFailed(server: string, backoffAt: number): void {
    this.countFailure(server, backoffAt);
    this.tell({ kind: 'server-failed', server, backoffAt });
  }

  private countFailure(server: string, backoffAt: number): void {
    const s = this.servers.get(server) ?? { consecutive: 0, openUntil: 0 };
    s.consecutive++;
    // Open, then half-open after openMs: one more failure re-opens it at once.
    if (s.consecutive >= backoffAt) s.openUntil = Date.now() + this.openMs;
    this.servers.set(server, s);
  }

  serverAnswered(server: string): void {
    // Most answers come from servers that never failed: nothing to tell then.
    if (this.servers.delete(server)) this.tell({ kind: 'server-answered', server });
  }

  /** Waits for a fetch slot (the process's `processLimit`, split between HTTP threads); the
   * returned function gives it back. */
  async slot(processLimit: number): Promise<() => void> {
    const limit = Math.max(1, Math.ceil(processLimit / this.threads));
    if (this.running >= limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    };
  }
}
