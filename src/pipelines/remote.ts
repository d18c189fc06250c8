import { PassThrough, pipeline, type Readable } from 'node:stream';
import { Errors, MatrixError, remoteFetchFailure } from '../errors.js';
import type { DomainConfig, Config } from '../config/schema.js';
import { byteLimit } from '../config/limits.js';
import type { Db } from '../db/driver.js';
import { findBlobByHash, getMedia, insertMedia, lockHash, type MediaRow } from '../db/media.js';
import { isHashBlocked } from '../db/moderation.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { StagingWriter } from '../datastores/datastore.js';
import type { MediaRowCache } from '../cache/media-rows.js';
import type { SingleFlight } from '../cache/singleflight.js';
import type { RemoteFetchState } from '../cache/remote-state.js';
import type { FederationClient } from '../matrix/federation-client.js';
import { loadSigningKey, type SigningKey } from '../matrix/signing-keys.js';
import type { Logger } from '../logging/logger.js';
import { openRemoteSource, type RemoteBody } from './remote-source.js';
import { placeBlob } from './steps/place-blob.js';
import { assertVisible } from './local-media.js';
import { coordinate } from '../redis/locks.js';
import type { SharedLocks } from '../threads/shared-locks.js';
import type { RedisRing } from '../redis/ring.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';

// Remote media (another server's mxc). The first request streams the file to its client while
// it is written to a `remote_media` datastore and hashed; requests arriving meanwhile wait for
// the stored row; later ones are served from storage like local media.
//
// A first client slower than the origin paces the transfer only briefly: once it has taken
// nothing for CLIENT_STALL_MS it is detached, the transfer runs on at the origin's speed (so a
// phone on a slow link cannot hold a fetch slot, keep joiners waiting, or push the transfer past
// the federation timeout), and the client's remaining bytes come from storage once stored.

/** How long a first client may hold the transfer back before it is served from storage instead. */
export const CLIENT_STALL_MS = 500;

export interface RemoteDeps {
  metrics?: MediaMetrics;
  db: Db;
  datastores: DatastoreRegistry;
  mediaRows: MediaRowCache;
  federation: FederationClient;
  remoteFlights: SingleFlight<MediaRow>;
  remoteState: RemoteFetchState;
  log: Logger;
  config(): { global: Config };
  /** One fetch per mxc across instances too, where Redis is on. */
  redis?: { ring: RedisRing };
  /** One per key across this process's HTTP threads, when it has several. */
  threadLocks?: SharedLocks;
}

export interface RemoteRequest {
  origin: string;
  mediaId: string;
  /** The homeserver asking (its name signs the request, its datastores store the file). */
  domain: DomainConfig;
  authenticated: boolean;
  /** The caller can take a stream (downloads); thumbnails need the stored row. */
  wantStream: boolean;
}

export type RemoteMedia =
  | { kind: 'stored'; row: MediaRow }
  | { kind: 'streaming'; contentType: string | null; uploadName: string | null; body: Readable };

const keys = new Map<string, { key: SigningKey; until: number }>();
/** The homeserver's signing key, re-read every 5 minutes (key rotation without a restart). */
function signingKey(path: string): SigningKey | null {
  if (!path) return null;
  const hit = keys.get(path);
  if (hit && hit.until > Date.now()) return hit.key;
  const key = loadSigningKey(path);
  keys.set(path, { key, until: Date.now() + 5 * 60_000 });
  return key;
}

// Step 1: a stored row (freeze rules as for local media).
// Step 2: refusals that cost nothing: ignored hosts, a remembered failure, an open breaker,
//         and legacy endpoints during the freeze (newly cached media is authenticated-only).
// Step 3: one fetch per mxc: join a running one, or start it (streamed to us if we can take it).
export async function getRemoteMedia(deps: RemoteDeps, r: RemoteRequest & { wantStream: true }): Promise<RemoteMedia>;
export async function getRemoteMedia(
  deps: RemoteDeps,
  r: RemoteRequest & { wantStream: false },
): Promise<RemoteMedia & { kind: 'stored' }>;
export async function getRemoteMedia(deps: RemoteDeps, r: RemoteRequest): Promise<RemoteMedia> {
  const g = deps.config().global;
  const mxc = `${r.origin}/${r.mediaId}`;
  const row = deps.mediaRows.get(r.origin, r.mediaId) ?? (await getMedia(deps.db, r.origin, r.mediaId));
  if (row) {
    deps.mediaRows.set(row);
    assertVisible(row, r.authenticated);
    return { kind: 'stored', row };
  }
  if (g.federation.ignoredHosts.some((h) => h.toLowerCase() === r.origin.toLowerCase()))
    throw Errors.notFound('Media from this server is not fetched');
  if (!r.authenticated && g.repo.freezeUnauthenticatedMedia)
    throw Errors.notFound('Remote media is only available on authenticated endpoints');
  const failed = deps.remoteState.recentFailure(mxc);
  if (failed) throw failed;
  deps.remoteState.checkServer(r.origin);
  // Only the caller that starts the flight gets the stream; joiners wait for the stored row.
  let toClient!: (s: RemoteMedia & { kind: 'streaming' }) => void;
  const streaming = new Promise<RemoteMedia & { kind: 'streaming' }>((resolve) => (toClient = resolve));
  // The lock outlives the slowest fetch the federation timeout allows; a waiter gives up on a
  // holder that went quiet no sooner than that.
  const lockMs = g.timeouts.federationTimeoutSeconds * 1000 + 30_000;
  const stored = deps.remoteFlights.run(mxc, () =>
    coordinate(
      deps.redis?.ring,
      `remote:${mxc}`,
      {
        ttlMs: lockMs,
        waitMs: lockMs,
        threads: deps.threadLocks,
        recheck: async () => {
          const other = await getMedia(deps.db, r.origin, r.mediaId);
          if (other) deps.mediaRows.set(other);
          return other;
        },
      },
      () =>
        fetchAndStore(deps, r, (meta, body) => {
          toClient({ kind: 'streaming', contentType: meta.contentType, uploadName: meta.uploadName, body });
        }),
    ),
  );
  if (!r.wantStream) return { kind: 'stored', row: visible(await stored, r.authenticated) };
  const first = await Promise.race([
    stored.then((row) => ({ kind: 'stored' as const, row: visible(row, r.authenticated) })),
    streaming,
  ]);
  // A stream handed out means the flight is this caller's: its failure after this point
  // reaches the client as a cut-off body, so the stored promise must not go unobserved.
  if (first.kind === 'streaming') stored.catch(() => undefined);
  return first;
}

/** A row another instance stored may have been quarantined since. */
function visible(row: MediaRow, authenticated: boolean): MediaRow {
  assertVisible(row, authenticated);
  return row;
}

async function fetchAndStore(
  deps: RemoteDeps,
  r: RemoteRequest,
  onStream: (meta: RemoteBody, body: Readable) => void,
): Promise<MediaRow> {
  const g = deps.config().global;
  const mxc = `${r.origin}/${r.mediaId}`;
  const release = await deps.remoteState.slot(g.downloads.numWorkers);
  let staging: StagingWriter | null = null;
  // Set when the client was detached: it then waits for bytes only storage can give.
  let waitingClient: PassThrough | null = null;
  try {
    const source = await openRemoteSource(deps.federation, {
      origin: r.origin,
      mediaId: r.mediaId,
      ourName: r.domain.homeserver.name,
      key: signingKey(r.domain.homeserver.signingKeyPath),
      timeoutMs: g.timeouts.federationTimeoutSeconds * 1000,
      maxBytes: byteLimit(g.downloads.maxBytes),
    });
    const ds = deps.datastores.pick(
      'remote_media',
      r.domain.datastores.map((d) => d.id),
    );
    if (!ds) throw Errors.unavailable('No datastore accepts remote media for this homeserver');
    staging = await ds.createStaging();
    const client = new PassThrough({ highWaterMark: 1024 * 1024 });
    onStream(source, client);
    const detachedAt = await tee(source.body, staging, client);
    if (detachedAt !== null) waitingClient = client;
    const { sha256, size } = await staging.finish();
    const row = await deps.db.tx(async (q) => {
      await lockHash(q, sha256);
      // Bytes an admin quarantined are not kept: the row is a tombstone (no blob) that answers 404.
      const blocked = await isHashBlocked(q, sha256, r.origin);
      if (blocked) await staging!.abort();
      const blob = blocked
        ? { datastoreId: ds.id, location: '' }
        : await placeBlob(deps.datastores, {
            ds,
            staging: staging!,
            sha256,
            size,
            candidates: await findBlobByHash(q, sha256),
          });
      const fresh: MediaRow = {
        origin: r.origin,
        mediaId: r.mediaId,
        uploadName: source.uploadName,
        contentType: source.contentType,
        userId: '',
        sha256,
        sizeBytes: size,
        ...blob,
        creationTs: Date.now(),
        quarantined: blocked,
        requiresAuth: g.repo.freezeUnauthenticatedMedia,
      };
      if (await insertMedia(q, fresh, { allowReserved: true })) return fresh;
      return (await getMedia(q, r.origin, r.mediaId)) ?? fresh; // another instance stored it first
    });
    deps.remoteState.serverAnswered(r.origin);
    deps.mediaRows.set(row);
    if (detachedAt !== null) finishFromStorage(deps, { row, sha256, from: detachedAt, client });
    deps.log.info('remote media stored', { origin: r.origin, mediaId: r.mediaId, size });
    deps.metrics?.downloaded.inc({ origin: deps.metrics.originLabel(r.origin) });
    return row;
  } catch (e) {
    await staging?.abort();
    waitingClient?.destroy(new Error('remote media could not be stored'));
    const err = remoteFetchFailure(e, r.origin);
    if (err.status === 404) deps.remoteState.serverAnswered(r.origin);
    else deps.remoteState.serverFailed(r.origin, g.federation.backoffAt);
    deps.remoteState.rememberFailure(mxc, err, g.downloads.failureCacheMinutes);
    deps.log.warn('remote media fetch failed', {
      origin: r.origin,
      mediaId: r.mediaId,
      status: err.status,
      error: err.message,
    });
    throw err;
  } finally {
    release();
  }
}

/**
 * The rest of a detached client's body, read from the stored blob. The bytes must be the ones
 * this fetch hashed: if another instance stored different bytes under the mxc first, the client
 * gets a cut-off body rather than a splice of two files.
 */
function finishFromStorage(
  deps: RemoteDeps,
  r: { row: MediaRow; sha256: string; from: number; client: PassThrough },
): void {
  const { row, sha256, from, client } = r;
  const ds = deps.datastores.get(row.datastoreId);
  if (client.destroyed) return;
  if (!ds || row.sha256 !== sha256) {
    client.destroy(new Error('stored remote media differs from the fetched bytes'));
    return;
  }
  if (from >= row.sizeBytes) {
    client.end();
    return;
  }
  pipeline(ds.openStream(row.location, { start: from, end: row.sizeBytes - 1 }), client, (err) => {
    if (err && !client.destroyed) client.destroy(err);
  });
}

/**
 * Copies `source` to the staging writer and to the client stream. Storage paces the copy; the
 * client paces it until it stalls for CLIENT_STALL_MS, then is detached (and a client that goes
 * away stops nothing). Resolves with the number of bytes the client was given when detached
 * (the rest comes from storage), or null when the client had all of it (its stream is ended).
 * On a source error the client stream is destroyed with that error.
 */
function tee(source: Readable, staging: StagingWriter, client: PassThrough): Promise<number | null> {
  return new Promise((resolve, reject) => {
    let stagingFull = false;
    let attached = true;
    let given = 0;
    let stall: NodeJS.Timeout | null = null;
    const clientHolds = () => attached && !client.destroyed && client.writableNeedDrain;
    const resume = () => {
      if (stall && !clientHolds()) {
        clearTimeout(stall);
        stall = null;
      }
      if (!stagingFull && !clientHolds()) source.resume();
    };
    const detach = () => {
      stall = null;
      if (!attached) return;
      attached = false;
      resume();
    };
    staging.onDrain(function again() {
      stagingFull = false;
      resume();
      staging.onDrain(again);
    });
    client.on('drain', resume);
    client.on('close', detach);
    source.on('data', (chunk: Buffer) => {
      try {
        if (!staging.write(chunk)) stagingFull = true;
      } catch (e) {
        source.destroy(e as Error);
        return;
      }
      if (attached && !client.destroyed) {
        client.write(chunk);
        given += chunk.length;
      }
      if (stagingFull || clientHolds()) source.pause();
      if (clientHolds() && !stall) stall = setTimeout(detach, CLIENT_STALL_MS);
    });
    source.once('end', () => {
      if (stall) clearTimeout(stall);
      if (attached || client.destroyed) {
        client.end();
        resolve(null);
      } else resolve(given);
    });
    source.once('error', (e) => {
      if (stall) clearTimeout(stall);
      client.destroy(e instanceof MatrixError ? e : new Error('remote transfer failed'));
      reject(e);
    });
  });
}
