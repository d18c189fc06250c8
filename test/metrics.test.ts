import t from 'tap';
import { ALICE, startTestRepo } from './helpers/repo.js';

// The metrics listener: its own port, Prometheus text, the process and Node collectors, and
// nothing of it on the public listener.

t.test('metrics on their own listener', async (t) => {
  const repo = await startTestRepo('pglite', { metrics: { enabled: true, bindAddress: '127.0.0.1', port: 0 } });
  t.teardown(() => repo.close());
  const port = repo.repo.metricsPort;
  t.ok(port && port !== repo.port, 'a separate port');
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain/);
  const text = await res.text();
  for (const name of [
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_heap_size_used_bytes',
  ]) {
    t.match(text, new RegExp(`^${name} [0-9.e+-]+$`, 'm'), name);
  }
  t.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m, 'GC durations');
  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  const pub = await repo.fetch('/metrics', { token: ALICE });
  t.equal(pub.status, 404, 'not on the public listener');
});

t.test('metrics off by default: no listener', async (t) => {
  const repo = await startTestRepo('pglite');
  t.teardown(() => repo.close());
  t.equal(repo.repo.metricsPort, null);
});
