import t from 'tap';
import { validateConfigWithWarnings } from '../src/config/validate.js';
import { createLogger } from '../src/logging/logger.js';
import { RedisRing, COMMAND_TIMEOUT_MS } from '../src/redis/ring.js';
import { coordinate } from '../src/redis/locks.js';
import { freePort } from './helpers/repo.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';

// The redis section's validation, and the ring's client side against a real Redis: reload,
// failure fall-through, and the cross-instance lock (two rings stand for two instances).

const REDIS_URL = process.env.MEDIA_REPO_TEST_REDIS ?? '';
const skip = REDIS_URL ? false : 'MEDIA_REPO_TEST_REDIS is not set';
const DS = [{ id: 'local', type: 'file', forKinds: ['all'], opts: { path: '/tmp/x' } }];
const log = createLogger({ level: 'error', json: false, sink: () => undefined });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('redis config: defaults, and exact messages for bad values', async (t) => {
  const { config } = validateConfigWithWarnings({ datastores: DS });
  t.same(config.redis, { enabled: false, databaseNumber: 0, shards: [], maxCacheObjectBytes: 1048576 });
  const ok = validateConfigWithWarnings({
    datastores: DS,
    redis: {
      enabled: true,
      shards: [
        { name: 'a', addr: 'localhost:6379' },
        { name: 'b', addr: 'rediss://:pw@r.example:6380' },
        { name: 'c', addr: '[::1]:6379' },
      ],
    },
  });
  t.equal(ok.config.redis.shards.length, 3, 'host:port, redis(s) URLs and [IPv6]:port are accepted');
  const bad: [unknown, string][] = [
    [{ enabled: 'yes' }, 'redis.enabled: expected true or false, got "yes"'],
    [{ databaseNumber: -1 }, 'redis.databaseNumber: expected an integer of at least 0, got -1'],
    [
      { shards: [{ name: 'a', addr: 'localhost' }] },
      'redis.shards[0].addr: expected host:port or a redis:// URL, got "localhost"',
    ],
    [
      { shards: [{ name: 'a', addr: 'h:70000' }] },
      'redis.shards[0].addr: expected host:port or a redis:// URL, got "h:70000"',
    ],
    [{ shards: [{ addr: 'h:1' }] }, 'redis.shards[0].name: expected a non-empty string, got nothing'],
    [
      {
        shards: [
          { name: 'a', addr: 'h:1' },
          { name: 'a', addr: 'h:2' },
        ],
      },
      'redis.shards[1].name: expected a unique name (redis.shards[0] already uses it), got "a"',
    ],
    [{ enabled: true }, 'redis.shards: expected at least one shard when redis.enabled is true, got []'],
    [
      { maxCacheObjectBytes: 1e9 },
      'redis.maxCacheObjectBytes: expected an integer from 0 to 536870912, got 1000000000',
    ],
  ];
  for (const [redis, message] of bad)
    t.throws(() => validateConfigWithWarnings({ datastores: DS, redis }), { message }, message);
});

t.test('a disabled ring answers undefined at once and takes no lock', async (t) => {
  const ring = new RedisRing(log);
  ring.configure({ enabled: false, databaseNumber: 0, shards: [], maxCacheObjectBytes: 0 });
  t.equal(ring.enabled, false);
  t.equal(await ring.call('k', (c, k) => c.get(k)), undefined);
  t.equal(
    await coordinate(ring, 'x', { ttlMs: 1000, waitMs: 1000, recheck: async () => 'other' }, async () => 'mine'),
    'mine',
  );
});

t.test('ring against a real Redis', { skip }, async (t) => {
  const addr = new URL(REDIS_URL).host;
  const cfg = (shards: { name: string; addr: string }[]) => ({
    enabled: true,
    databaseNumber: 4,
    shards,
    maxCacheObjectBytes: 1024,
  });
  const a = new RedisRing(log);
  const b = new RedisRing(log);
  t.teardown(() => {
    a.close();
    b.close();
  });
  const ready = async (r: RedisRing) => {
    for (let i = 0; i < 100 && !r.ready(); i++) await sleep(20);
  };

  t.test('commands go through; a reload to two shards spreads keys and keeps working', async (t) => {
    a.configure(cfg([{ name: 'one', addr }]));
    await ready(a);
    t.equal(await a.call('t:k', (c, k) => c.set(k, 'v', 'EX', 10)), 'OK');
    t.equal(await a.call('t:k', (c, k) => c.get(k)), 'v');
    // Two names on one server stand for two shards: placement is by name.
    a.configure(
      cfg([
        { name: 'one', addr },
        { name: 'two', addr },
      ]),
    );
    await ready(a);
    const owners = new Set(Array.from({ length: 50 }, (_, i) => a.shardOf(`k${i}`)));
    t.same([...owners].sort(), ['one', 'two'], 'keys land on both shards after the reload');
    t.equal(await a.call('t:k', (c, k) => c.get(k)), 'v', 'calls work on the rebuilt ring');
  });

  t.test('a shard where nothing listens: calls fall through at once, counted', async (t) => {
    const dead = new RedisRing(log);
    t.teardown(() => dead.close());
    dead.configure(cfg([{ name: 'dead', addr: `127.0.0.1:${await freePort()}` }]));
    await sleep(100);
    const t0 = Date.now();
    t.equal(await dead.call('k', (c, k) => c.get(k)), undefined);
    t.ok(Date.now() - t0 < COMMAND_TIMEOUT_MS, 'no wait for a shard that is down');
    t.equal(dead.stats.skipped, 1, 'counted as skipped');
    const ran = await coordinate(
      dead,
      'x',
      { ttlMs: 1000, waitMs: 5000, recheck: async () => null },
      async () => 'ran',
    );
    t.equal(ran, 'ran', 'a lock that cannot be taken does not block the work');
    t.equal(dead.stats.lockFallbacks, 1);
  });

  t.test("cross-instance lock: the second instance waits and takes the first one's result", async (t) => {
    b.configure(
      cfg([
        { name: 'one', addr },
        { name: 'two', addr },
      ]),
    );
    await ready(b);
    const name = `test-${Date.now()}`;
    let result: string | null = null;
    let runs = 0;
    const work = async () => {
      runs++;
      await sleep(300);
      result = 'made once';
      return result;
    };
    const opts = { ttlMs: 5000, waitMs: 5000, recheck: async () => result };
    const first = coordinate(a, name, opts, work);
    await sleep(50);
    const second = coordinate(b, name, opts, work);
    t.same(await Promise.all([first, second]), ['made once', 'made once']);
    t.equal(runs, 1, 'the work ran on one instance only');
    t.equal(b.stats.locksBusy, 1, 'the second instance found the lock held');
    // Released (compare-and-delete, sent without waiting): the next caller takes it at once.
    await sleep(50);
    const t0 = Date.now();
    result = null;
    t.equal(await coordinate(b, name, opts, async () => 'again'), 'again');
    t.ok(Date.now() - t0 < 200, 'the lock was released');
  });

  t.test('a lock held past its waitMs: the waiter does the work itself', async (t) => {
    const name = `stuck-${Date.now()}`;
    await a.call(`lock:${name}`, (c, k) => c.set(k, 'someone-else', 'PX', 5000));
    const t0 = Date.now();
    const out = await coordinate(b, name, { ttlMs: 5000, waitMs: 300, recheck: async () => null }, async () => 'mine');
    t.equal(out, 'mine');
    t.ok(Date.now() - t0 >= 300, 'it waited first');
    t.equal(await a.call(`lock:${name}`, (c, k) => c.get(k)), 'someone-else', "another holder's lock is not deleted");
  });

  t.test('a Redis that is down at start: the ring heals by itself once it is up, subscriptions too', async (t) => {
    const port = await freePort();
    const late = new RedisRing(log);
    t.teardown(() => late.close());
    late.configure(cfg([{ name: 'one', addr: `127.0.0.1:${port}` }]));
    const got: string[] = [];
    late.subscribe('late-channel', (m) => got.push(m));
    await sleep(300);
    t.equal(await late.call('k', (c, k) => c.get(k)), undefined, 'nothing while it is down');
    const target = new URL(REDIS_URL);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379), port);
    t.teardown(() => proxy.kill());
    for (let i = 0; i < 150 && !late.ready(); i++) await sleep(20);
    t.ok(late.ready(), 'reconnected without help');
    t.equal(await late.call('t:late', (c, k) => c.set(k, 'up', 'EX', 10)), 'OK', 'commands work again');
    await sleep(100);
    a.publish('late-channel', 'r', 'after the outage');
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    t.same(got, ['after the outage'], 'the subscription made while it was down is in place');
  });

  t.test('pub/sub reaches every ring, over both shards', async (t) => {
    const got: string[] = [];
    const off = b.subscribe('test-channel', (m) => got.push(m));
    t.teardown(off);
    await sleep(100);
    a.publish('test-channel', 'route-1', 'hello');
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    t.ok(got.includes('hello'), 'the message arrived');
  });
});
