import { Errors } from '../../errors.js';
import type { DomainConfig, LoadedConfig } from '../../config/schema.js';
import { resolveLocalMedia, type ResolveDeps } from '../local-media.js';
import { getRemoteMedia, type RemoteDeps, type RemoteMedia } from '../remote.js';

export interface FindMediaRequest {
  origin: string;
  mediaId: string;
  /** How long to wait for a pending async upload of our own media. */
  timeoutMs: number;
  authenticated: boolean;
  /** `allow_remote`: false refuses media of other servers. */
  allowRemote: boolean;
  /** The homeserver asking (for remote media: its signing key and datastores). */
  domain: DomainConfig;
}

/** What both kinds of media need; the full config, since local means "one of our homeservers". */
export type FindMediaDeps = ResolveDeps & Omit<RemoteDeps, 'config'> & { config(): LoadedConfig };

/** The media a download or thumbnail is of, and whether it is our own (`local`). */
export type FoundMedia = RemoteMedia & { local: boolean };

/**
 * Our own media (waiting for a pending async upload), or another server's: stored, or fetched
 * now, and then streamed through while it is stored where the caller can take a stream.
 */
export function findMedia(deps: FindMediaDeps, r: FindMediaRequest, wantStream: true): Promise<FoundMedia>;
export function findMedia(
  deps: FindMediaDeps,
  r: FindMediaRequest,
  wantStream: false,
): Promise<FoundMedia & { kind: 'stored' }>;
export async function findMedia(deps: FindMediaDeps, r: FindMediaRequest, wantStream: boolean): Promise<FoundMedia> {
  if (deps.config().domains.has(r.origin))
    return { kind: 'stored', row: await resolveLocalMedia(deps, r), local: true };
  if (!r.allowRemote) throw Errors.notFound('Remote media was not requested (allow_remote=false)');
  const remote = { origin: r.origin, mediaId: r.mediaId, domain: r.domain, authenticated: r.authenticated };
  const found = wantStream
    ? await getRemoteMedia(deps, { ...remote, wantStream: true })
    : await getRemoteMedia(deps, { ...remote, wantStream: false });
  return { ...found, local: false };
}
