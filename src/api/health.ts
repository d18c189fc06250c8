import { json, type Result } from '../http/types.js';
import { VERSION } from '../version.js';
import type { Ctx } from './services.js';

/** GET/HEAD /healthz: liveness only, no I/O, no Host check. */
export async function healthHandler(): Promise<Result> {
  return json({ ok: true, status: 'alive' }, 200, { 'Cache-Control': 'no-store' });
}

/** GET /_matrix/media/version, in MMR's shape so its tooling keeps working. */
export async function versionHandler(_ctx: Ctx): Promise<Result> {
  return json({
    Version: VERSION,
    GitCommit: process.env.MEDIA_REPO_GIT_COMMIT ?? '',
    unstable_features: {},
    server: 'media-repo',
  });
}
