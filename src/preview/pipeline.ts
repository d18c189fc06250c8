import { Errors, previewFailure, storedError, type MatrixError } from '../errors.js';
import type { Config, DomainConfig, UrlPreviewsSection } from '../config/schema.js';
import type { Db } from '../db/driver.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import { getPreview, putPreview, type PreviewKey, type StoredPreview } from '../db/url-previews.js';
import type { SingleFlight } from '../cache/singleflight.js';
import type { PreviewResults } from './results-cache.js';
import type { PreviewParser } from './pool.js';
import type { Admission } from '../pools/admission.js';
import type { OEmbedProviders } from './oembed-providers.js';
import type { IdentifyImage } from './preview-image.js';
import type { BlurhashImage } from './identify.js';
import type { Logger } from '../logging/logger.js';
import { IpRangeList } from '../net/ip-ranges.js';
import { generatePreview, type PreviewFetchOptions } from './generate.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';
import { coordinate } from '../redis/locks.js';
import type { SharedLocks } from '../threads/shared-locks.js';

// URL previews: one cached answer per URL, hour bucket of `ts` and Accept-Language. Failures
// are cached like successes (a dead link is not fetched again for every message that shows
// it); concurrent requests for one key make one fetch; at most urlPreviews.numWorkers previews
// are generated at once (each holds at most one page of maxPageSizeBytes), more wait in a
// bounded line, and beyond it the client gets 429.

export interface PreviewDeps {
  db: Db;
  datastores: DatastoreRegistry;
  pool: PreviewParser;
  gate: Pick<Admission, 'enter' | 'leave'>;
  flights: SingleFlight<StoredPreview>;
  results: PreviewResults;
  providers(): OEmbedProviders | null;
  identifyImage: IdentifyImage;
  blurhashImage?: BlurhashImage;
  log: Logger;
  config(): { global: Config };
  metrics?: MediaMetrics;
  /** One generation per preview key across this process's HTTP threads, when it has several. */
  threadLocks?: SharedLocks;
}

export interface PreviewRequest {
  url: string;
  /** The client's `ts` (ms), if given. */
  ts: number | null;
  /** The client's Accept-Language header, if any. */
  acceptLanguage: string | null;
  userId: string;
  serverName: string;
  domain: DomainConfig;
}

const HOUR = 3_600_000;
const MAX_URL_LENGTH = 4096;

/** The URL as previewed and cached: http(s) only, no fragment (it never reaches the server). */
export function previewTarget(raw: string): string {
  if (raw.length > MAX_URL_LENGTH) throw Errors.invalidParam(`url: longer than ${MAX_URL_LENGTH} characters`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw Errors.invalidParam('url: not an absolute URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw Errors.invalidParam(`url: only http and https URLs are previewed, not ${u.protocol}`);
  if (u.username || u.password) throw Errors.invalidParam('url: URLs with credentials are not previewed');
  u.hash = '';
  return u.href;
}

/** The hour the preview is for: the client's `ts`, never later than now (the future cannot be fetched). */
export function bucketOf(ts: number | null, now = Date.now()): number {
  const at = ts === null || ts > now ? now : Math.max(0, ts);
  return at - (at % HOUR);
}

const lists = new Map<string, { allow: IpRangeList; deny: IpRangeList }>();
function rangeLists(cfg: UrlPreviewsSection): { allow: IpRangeList; deny: IpRangeList } {
  const key = JSON.stringify([cfg.allowedNetworks, cfg.disallowedNetworks]);
  let l = lists.get(key);
  if (!l) {
    if (lists.size > 16) lists.clear(); // config reloads only; never grows past a handful
    l = { allow: IpRangeList.parse(cfg.allowedNetworks), deny: IpRangeList.parse(cfg.disallowedNetworks) };
    lists.set(key, l);
  }
  return l;
}

/** Failures worth remembering for the bucket; the rest (our own overload, shutdown) are not. */
function cacheable(e: MatrixError): boolean {
  return e.status !== 429 && e.status !== 503;
}

// Step 1: refusals that cost nothing (previews disabled, a bad URL).
// Step 2: the in-process result cache, then one flight per key: the database row, else a new
//         preview generated under the concurrency gate and stored (failures too).
// Step 3: the stored answer: the JSON text as stored, or its error.
export async function previewUrl(deps: PreviewDeps, r: PreviewRequest): Promise<string> {
  const cfg = r.domain.urlPreviews;
  if (!cfg.enabled) throw Errors.unrecognized();
  const url = previewTarget(r.url);
  const language = (r.acceptLanguage?.trim() || cfg.defaultLanguage).slice(0, 256);
  const key: PreviewKey = { serverName: r.serverName, url, bucketTs: bucketOf(r.ts), language };
  const id = `${r.serverName}\n${key.bucketTs}\n${language}\n${url}`;
  // One fetch per key in this thread (flights), then in the process (the threads' lock; a
  // waiter takes the stored answer the holder wrote).
  const waitMs = deps.config().global.timeouts.urlPreviewTimeoutSeconds * 1000 + 5000;
  const stored =
    deps.results.get(id) ??
    (await deps.flights.run(id, () =>
      coordinate(
        undefined,
        `preview:${id}`,
        { ttlMs: waitMs, waitMs, threads: deps.threadLocks, recheck: () => getPreview(deps.db, key) },
        () => lookupOrGenerate(deps, r, cfg, key),
      ),
    ));
  deps.results.set(id, stored);
  if (stored.ok) return stored.json;
  throw storedError(stored.errcode, stored.status, stored.message);
}

async function lookupOrGenerate(
  deps: PreviewDeps,
  r: PreviewRequest,
  cfg: UrlPreviewsSection,
  key: PreviewKey,
): Promise<StoredPreview> {
  const row = await getPreview(deps.db, key);
  if (row) return row;
  await deps.gate.enter();
  let result: StoredPreview;
  try {
    const g = deps.config().global;
    const opts: PreviewFetchOptions = {
      ...rangeLists(cfg),
      timeoutMs: g.timeouts.urlPreviewTimeoutSeconds * 1000,
      rejectUnauthorized: !cfg.previewUnsafeCertificates,
      headers: { 'user-agent': cfg.userAgent, 'accept-language': key.language },
    };
    const json = await generatePreview(
      { ...deps, providers: cfg.oEmbed ? deps.providers() : null },
      {
        url: key.url,
        cfg,
        fetch: opts,
        userId: r.userId,
        serverName: r.serverName,
        domain: r.domain,
        requiresAuth: g.repo.freezeUnauthenticatedMedia,
      },
    );
    result = { ok: true, json: JSON.stringify(json), creationTs: Date.now() };
  } catch (e) {
    const err = previewFailure(e); // what the client sees, and what is cached
    if (err.status >= 500)
      deps.log.warn('url preview failed', { url: key.url, status: err.status, error: (e as Error).message });
    if (!cacheable(err)) throw err;
    result = { ok: false, errcode: err.errcode, status: err.status, message: err.message, creationTs: Date.now() };
  } finally {
    deps.gate.leave();
  }
  await putPreview(deps.db, key, result);
  return result;
}
