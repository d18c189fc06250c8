import { Errors } from '../../errors.js';
import type { DomainConfig } from '../../config/schema.js';
import type { Logger } from '../../logging/logger.js';
import type { RoleDeps } from '../roles.js';
import type { MediaKey } from '../../db/purge.js';

export type { MediaKey };

// A room's media as its homeserver knows it (Synapse's admin API lists the mxc URIs of its
// unencrypted events), asked with the caller's own token, as MMR does: media-repo never sees
// events.

export async function roomMediaKeys(
  deps: RoleDeps,
  r: { roomId: string; userId: string; token: string; domain: DomainConfig; remoteAddress: string; log: Logger },
): Promise<MediaKey[]> {
  // The shared secret is ours, not the homeserver's: it cannot list a room there.
  if (r.userId === '@sharedsecret' || r.token === '') {
    throw Errors.forbidden("Listing a room's media needs a homeserver admin's access token, not the shared secret");
  }
  const listed = await deps.homeserver.roomMedia(r.domain.homeserver, r.token, r.roomId, {
    timeoutMs: r.domain.timeouts.clientServerTimeoutSeconds * 1000,
    forwardedFor: r.remoteAddress,
    log: r.log,
  });
  const keys: MediaKey[] = [];
  for (const mxc of [...listed.local, ...listed.remote]) {
    const m = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(mxc);
    if (m) keys.push({ origin: m[1]!, mediaId: m[2]! });
  }
  return keys;
}
