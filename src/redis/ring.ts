import { Redis, type RedisOptions } from 'ioredis';
import type { RedisSection } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { HashRing } from './hash-ring.js';
import { newRedisStats, type RedisStats } from './stats.js';

/** Longest any command may take before the caller falls through to the normal path. A cache
 * read slower than this loses to the datastore anyway; a lock slower than this is not worth it. */
export const COMMAND_TIMEOUT_MS = 250;
/** A shard that does not answer a connect within this is treated as down until it does. */
export const CONNECT_TIMEOUT_MS = 1000;
/** Reconnect backoff: 100 ms growing to at most 2 s, for ever (the client heals by itself). */
export const reconnectDelay = (attempt: number): number => Math.min(attempt * 100, 2000);
/** Consecutive timeouts after which a shard's connection is dropped and made anew: a hung
 * server (or a black-holed path) then costs no more 250 ms waits until it answers again. */
export const TIMEOUTS_BEFORE_RECONNECT = 3;

type Handler = (message: string) => void;

interface Shard {
  addr: string;
  /** Commands: no offline queue, so nothing piles up while the shard is down. */
  cmd: Redis;
  /** Subscriber connection (a subscribed connection cannot send other commands). */
  sub: Redis;
  timeoutStreak: number;
}

function url(addr: string): string {
  return /^rediss?:\/\//.test(addr) ? addr : `redis://${addr}`;
}

// The Redis ring: one client pair per shard, keys placed by consistent hashing. Every call is
// optional by design (MMR #350, where a broken Redis stopped serving): a call to a shard that
// is down or slow resolves to undefined within COMMAND_TIMEOUT_MS, is counted, and the caller
// goes on with the datastore or database. With redis.enabled false the ring is empty and every
// call answers undefined at once.
export class RedisRing {
  readonly stats: RedisStats = newRedisStats();
  private shards = new Map<string, Shard>();
  private ring = new HashRing([]);
  private applied = '';
  private readonly handlers = new Map<string, Set<Handler>>();
  private prefixValue = 'media-repo:0:';

  constructor(private readonly log: Logger) {}

  get enabled(): boolean {
    return this.shards.size > 0;
  }

  /** Key and channel prefix. Pub/sub ignores the database number, so channels carry it. */
  get prefix(): string {
    return this.prefixValue;
  }

  /** (Re)builds the clients for this config; a reload that leaves `redis` alone keeps them. */
  configure(cfg: RedisSection): void {
    const want = cfg.enabled ? JSON.stringify([cfg.databaseNumber, cfg.shards]) : '';
    if (want === this.applied) return;
    this.applied = want;
    const old = this.shards;
    this.shards = new Map();
    this.prefixValue = `media-repo:${cfg.databaseNumber}:`;
    if (cfg.enabled) {
      for (const s of cfg.shards) this.shards.set(s.name, this.connect(s.name, s.addr, cfg.databaseNumber));
    }
    this.ring = new HashRing([...this.shards.keys()]);
    for (const s of old.values()) this.disconnect(s);
    if (cfg.enabled)
      this.log.info('redis ring configured', {
        shards: cfg.shards.map((s) => `${s.name}=${s.addr}`).join(', '),
        db: cfg.databaseNumber,
      });
  }

  private connect(name: string, addr: string, db: number): Shard {
    const opts: RedisOptions = {
      db,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: reconnectDelay,
      // A restarted or failed-over Redis answers READONLY/LOADING for a while: reconnect.
      reconnectOnError: (e: Error) => /^(READONLY|LOADING)/.test(e.message),
    };
    const cmd = new Redis(url(addr), { ...opts, connectionName: 'media-repo' });
    // The subscriber may queue, and keep its commands across failed reconnects: it only ever
    // sends one SUBSCRIBE per channel (ioredis re-sends them after a reconnect), and a Redis
    // that is down at start must still get them once it is up.
    const sub = new Redis(url(addr), {
      ...opts,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
      connectionName: 'media-repo-sub',
    });
    let down = false;
    cmd.on('error', (e: Error) => {
      // Logged once per outage, not once per reconnect attempt.
      if (!down)
        this.log.warn('redis shard unavailable; serving without it until it is back', { shard: name, addr, error: e });
      down = true;
    });
    cmd.on('ready', () => {
      if (down) this.log.info('redis shard is back', { shard: name, addr });
      down = false;
    });
    sub.on('error', () => undefined); // the command client already reports the outage
    const prefix = this.prefixValue;
    sub.on('message', (channel: string, message: string) => {
      if (!channel.startsWith(prefix)) return;
      for (const h of this.handlers.get(channel.slice(prefix.length)) ?? []) h(message);
    });
    for (const channel of this.handlers.keys()) sub.subscribe(prefix + channel).catch(() => undefined);
    return { addr, cmd, sub, timeoutStreak: 0 };
  }

  private disconnect(s: Shard): void {
    s.cmd.disconnect();
    s.sub.disconnect();
  }

  /** Runs `fn` against the shard owning `key`; undefined when Redis is off, down, slow or fails. */
  async call<T>(key: string, fn: (client: Redis, key: string) => Promise<T>): Promise<T | undefined> {
    const name = this.ring.shardFor(key);
    const shard = name === null ? undefined : this.shards.get(name);
    if (!shard) return undefined;
    if (shard.cmd.status !== 'ready') {
      this.stats.skipped++;
      return undefined;
    }
    this.stats.commands++;
    try {
      const out = await fn(shard.cmd, this.prefixValue + key);
      shard.timeoutStreak = 0;
      return out;
    } catch (e) {
      this.stats.failures++;
      if ((e as Error).message?.includes('timed out')) {
        this.stats.timeouts++;
        if (++shard.timeoutStreak >= TIMEOUTS_BEFORE_RECONNECT && shard.cmd.status === 'ready') {
          shard.timeoutStreak = 0;
          this.log.warn('redis shard stopped answering; reconnecting it', { shard: name, addr: shard.addr });
          shard.cmd.disconnect(true);
        }
      }
      this.log.debug('redis command failed; falling through', { shard: name, error: e as Error });
      return undefined;
    }
  }

  /** Whether every shard is connected (tests wait for it; serving never does). */
  ready(): boolean {
    return [...this.shards.values()].every((s) => s.cmd.status === 'ready');
  }

  /** Shards whose command client is connected now (the metrics' shards-up gauge). */
  connectedShards(): number {
    let n = 0;
    for (const s of this.shards.values()) if (s.cmd.status === 'ready') n++;
    return n;
  }

  /** Publishes on the shard owning `routeKey`; every instance subscribes on every shard. */
  publish(channel: string, routeKey: string, message: string): void {
    void this.call(routeKey, (c) => c.publish(this.prefixValue + channel, message));
  }

  /** Subscribes on every shard, now and after each reconfigure; returns the unsubscribe. */
  subscribe(channel: string, handler: Handler): () => void {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      for (const s of this.shards.values()) s.sub.subscribe(this.prefixValue + channel).catch(() => undefined);
    }
    const handlers = set;
    handlers.add(handler);
    return () => handlers.delete(handler);
  }

  /** Which shard owns `key` (tests and diagnostics). */
  shardOf(key: string): string | null {
    return this.ring.shardFor(key);
  }

  close(): void {
    for (const s of this.shards.values()) this.disconnect(s);
    this.shards.clear();
    this.ring = new HashRing([]);
    this.applied = '';
  }
}
