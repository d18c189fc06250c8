import { Errors } from '../errors.js';
import { getMedia } from '../db/media.js';
import { getReservation, insertReservation, pendingForUser } from '../db/reservations.js';
import type { UploadWaiters } from '../cache/upload-waiters.js';
import type { RedisServices } from '../redis/services.js';
import { afterUpload } from './upload-images.js';
import { storeInput, type UploadPipelineDeps, type UploadRequest } from './upload.js';
import { storeUpload } from './steps/store-upload.js';
import { withNewMediaId } from './steps/media-id.js';
import { maxPendingFor } from './steps/quota.js';

// Async uploads (MSC2246): POST /create reserves an mxc, a later PUT fills it, and downloads
// that arrive in between wait for it.

export interface AsyncUploadDeps extends UploadPipelineDeps {
  waiters: UploadWaiters;
  redis: Pick<RedisServices, 'announceUpload' | 'ring'>;
  /** IDs with a PUT in progress on this instance: a second concurrent PUT gets 409 at once. */
  putsInFlight: Set<string>;
}

/** Reserves a media ID for the user, within uploads.maxPending (or their quota rule's), for uploads.maxAgeSeconds. */
export async function reserveMediaId(
  deps: AsyncUploadDeps,
  r: Pick<UploadRequest, 'origin' | 'userId' | 'domain'>,
): Promise<{ mxc: string; expiresTs: number }> {
  const { maxAgeSeconds } = r.domain.uploads;
  const maxPending = maxPendingFor(r.domain.uploads, r.userId);
  const now = Date.now();
  if (maxPending > 0) {
    const pending = await pendingForUser(deps.db, r.origin, r.userId, now);
    if (pending.length >= maxPending) {
      throw Errors.limitExceeded(
        `Too many pending uploads (${pending.length} of ${maxPending}); finish or let one expire`,
        pending[0]!.expiresTs - now,
      );
    }
  }
  const expiresTs = now + maxAgeSeconds * 1000;
  const mediaId = await withNewMediaId((id) =>
    insertReservation(deps.db, { origin: r.origin, mediaId: id, userId: r.userId, createdTs: now, expiresTs }),
  );
  return { mxc: `mxc://${r.origin}/${mediaId}`, expiresTs };
}

// Step 1: the spec's checks, in its order, before a byte of the body is read:
//         unknown → other user → already uploaded → expired; then one PUT at a time per ID.
// Step 2: store the body under the reserved ID.
// Step 3: wake the downloads waiting for it, here and (through Redis) on other instances.
// Step 4: the BlurHash for the answer (MSC2448, as on POST) and thumbnails in the background.
export interface ReservedUploadRequest extends Pick<UploadRequest, 'origin' | 'userId' | 'domain' | 'log'> {
  /** The mxc's server and ID, from the path. */
  mxcServer: string;
  mediaId: string;
  /** The upload itself, parsed only once the checks passed (they answer first, as before). */
  upload: () => UploadRequest;
}

export async function uploadToReservation(
  deps: AsyncUploadDeps,
  r: ReservedUploadRequest,
): Promise<{ blurhash?: string }> {
  const { origin, mediaId } = r;
  if (r.mxcServer !== origin) throw Errors.notFound('This media ID was not created on this homeserver');
  const [reservation, media] = await Promise.all([
    getReservation(deps.db, origin, mediaId),
    getMedia(deps.db, origin, mediaId),
  ]);
  if (!reservation && !media) throw Errors.notFound('Unknown media ID; create one with /_matrix/media/v1/create');
  const owner = media?.userId ?? reservation!.userId;
  if (owner !== r.userId) throw Errors.forbidden('This media ID was created by another user');
  if (media) throw Errors.cannotOverwrite();
  if (reservation!.expiresTs <= Date.now()) throw Errors.notFound('This media ID has expired');
  const key = `${origin}/${mediaId}`;
  if (deps.putsInFlight.has(key)) throw Errors.cannotOverwrite();
  deps.putsInFlight.add(key);
  let stored;
  try {
    stored = await storeUpload(deps, { ...storeInput(deps, r.upload()), reservedMediaId: mediaId });
  } finally {
    deps.putsInFlight.delete(key);
  }
  deps.mediaRows.set(stored.row);
  deps.waiters.notify(key);
  deps.redis.announceUpload(key);
  r.log.info('async upload stored', { mediaId, user: r.userId });
  return afterUpload(deps, { ...stored, domain: r.domain, blurhash: true });
}
