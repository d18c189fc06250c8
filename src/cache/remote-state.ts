import { LRUCache } from 'lru-cache';
import { Errors, MatrixError } from '../errors.js';

// Per-process memory of remote fetching: failures remembered per mxc, a circuit breaker per
// server (404 is an answer, not a failure), and a limit on fetches running at once.

export class RemoteFetchState {
  /** How long an open breaker refuses before letting one request try again. */
  constructor(private readonly openMs = 60_000) {}

  private readonly failures = new LRUCache<string, MatrixError>({ max: 50_000, ttlAutopurge: false });
  private readonly servers = new Map<string, { consecutive: number; openUntil: number }>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  rememberFailure(mxc: string, err: MatrixError, minutes: number): void {
    if (minutes > 0) this.failures.set(mxc, err, { ttl: minutes * 60_000 });
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
    const s = this.servers.get(server) ?? { consecutive: 0, openUntil: 0 };
    s.consecutive++;
    // Open, then half-open after openMs: one more failure re-opens it at once.
    if (s.consecutive >= backoffAt) s.openUntil = Date.now() + this.openMs;
    this.servers.set(server, s);
  }

  serverAnswered(server: string): void {
    this.servers.delete(server);
  }

  /** Waits for one of `limit` fetch slots; the returned function gives it back. */
  async slot(limit: number): Promise<() => void> {
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
