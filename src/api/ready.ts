import { json, type Result } from '../http/types.js';
import { readinessChecks } from '../pipelines/readiness.js';
import type { Ctx } from './services.js';

// GET /readyz: whether this instance should get traffic. Unlike /healthz (alive, no I/O) it
// checks the database and the datastores, and answers 503 while one fails or while the server
// is shutting down, so a load balancer stops sending work before the listener closes.

export async function readyHandler(ctx: Ctx): Promise<Result> {
  const headers = { 'Cache-Control': 'no-store' };
  if (ctx.svc.state.shuttingDown) return json({ ready: false, status: 'shutting down' }, 503, headers);
  const checks = await readinessChecks(ctx.svc.readiness);
  const ready = Object.values(checks).every((v) => v === 'ok');
  if (!ready) ctx.log.warn('not ready', checks);
  return json({ ready, checks }, ready ? 200 : 503, headers);
}
