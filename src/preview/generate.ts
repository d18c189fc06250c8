import { Errors } from '../errors.js';
import type { DomainConfig, UrlPreviewsSection } from '../config/schema.js';
import { byteLimit } from '../config/limits.js';
import type { Db } from '../db/driver.js';
import type { DatastoreRegistry } from '../datastores/registry.js';
import type { PreviewParseResult, PreviewTextLimits } from '../../workers/protocol.js';
import type { PreviewParser } from './pool.js';
import { safeJson, safeRequest, type SafeRequestOptions } from '../net/safe-request.js';
import { filenameFromDisposition } from '../http/content-disposition.js';
import { bufferBody } from '../http/buffer-body.js';
import { globMatch, oEmbedRequestUrl, type OEmbedProviders } from './oembed-providers.js';
import { readPrefix } from './page-reader.js';
import { fetchPreviewImage, type IdentifyImage, type PreviewImage } from './preview-image.js';
import type { BlurhashImage } from './identify.js';
import { storeUpload } from '../pipelines/steps/store-upload.js';
import type { MediaMetrics } from '../metrics/media-metrics.js';

// One preview, generated: oEmbed when the URL's provider has an endpoint, else the page itself
// (HTML parsed on the preview pool; a file of a filePreviewTypes type described from its
// headers), then the preview image fetched and stored as the requesting user's local media.
// Every fetch (page, redirect hops, oEmbed endpoint, discovered oEmbed link, image) goes
// through safeRequest with the same address lists and deadline.

/** safeRequest options shared by every fetch of one preview (lists, deadline, headers). */
export type PreviewFetchOptions = Omit<SafeRequestOptions, 'maxBytes'> & { headers: Record<string, string> };

export interface GenerateDeps {
  db: Db;
  datastores: DatastoreRegistry;
  pool: PreviewParser;
  /** Null when oEmbed is off. */
  providers: OEmbedProviders | null;
  identifyImage: IdentifyImage;
  /** The preview image's BlurHash; absent, none is computed. */
  blurhashImage?: BlurhashImage;
  metrics?: MediaMetrics;
}

export interface GenerateInput {
  url: string;
  cfg: UrlPreviewsSection;
  fetch: PreviewFetchOptions;
  userId: string;
  serverName: string;
  domain: DomainConfig;
  requiresAuth: boolean;
}

export type PreviewJson = Record<string, string | number>;

const HTML_ACCEPT = 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5';
const OEMBED_MAX_BYTES = 256 * 1024;

const mimeOf = (header: string | undefined): string => (header ?? '').split(';')[0]!.trim().toLowerCase();
const isHtml = (mime: string): boolean => mime === 'text/html' || mime === 'application/xhtml+xml';

function limitsOf(cfg: UrlPreviewsSection): PreviewTextLimits {
  return {
    numWords: cfg.numWords,
    maxLength: cfg.maxLength,
    numTitleWords: cfg.numTitleWords,
    maxTitleLength: cfg.maxTitleLength,
  };
}

/** An oEmbed answer as preview fields, or null when the endpoint fails (the page is the fallback). */
async function tryOEmbed(
  deps: GenerateDeps,
  requestUrl: string,
  input: GenerateInput,
): Promise<PreviewParseResult | null> {
  try {
    const { json } = await safeJson(requestUrl, { ...input.fetch, maxBytes: OEMBED_MAX_BYTES });
    const fields = await deps.pool.oEmbed({ json, pageUrl: input.url, limits: limitsOf(input.cfg) });
    return fields.title || fields.image ? fields : null;
  } catch {
    return null;
  }
}

/** A file's name from its headers or its URL's last path segment. */
function fileTitle(disposition: string | undefined, url: string, maxLength: number): string {
  let name = filenameFromDisposition(disposition);
  if (!name) {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    try {
      name = last ? decodeURIComponent(last) : null;
    } catch {
      name = last ?? null;
    }
  }
  const title = [...(name || url)];
  return title.length > maxLength ? `${title.slice(0, maxLength).join('')}…` : title.join('');
}

/** Fields of the page at `input.url` (and, for a file preview, the file as the image). */
async function fromPage(
  deps: GenerateDeps,
  input: GenerateInput,
): Promise<{ fields: PreviewParseResult; image: PreviewImage | null }> {
  const { cfg } = input;
  const maxPageBytes = byteLimit(cfg.maxPageSizeBytes);
  const res = await safeRequest(input.url, {
    ...input.fetch,
    maxBytes: Number.MAX_SAFE_INTEGER,
    headers: { ...input.fetch.headers, accept: HTML_ACCEPT },
  });
  if (res.status < 200 || res.status >= 300) {
    res.body.destroy();
    if (res.status === 404 || res.status === 410) throw Errors.notFound('The page was not found');
    throw Errors.badGateway(`The page answered HTTP ${res.status}`);
  }
  const mime = mimeOf(res.headers['content-type']);
  if (isHtml(mime)) {
    const { bytes } = await readPrefix(res.body, maxPageBytes);
    const fields = await deps.pool.html({
      bytes,
      contentType: res.headers['content-type'] ?? null,
      pageUrl: res.url,
      limits: limitsOf(cfg),
    });
    if (fields.oembedUrl && deps.providers) {
      // A discovered link is a URL the page chose: it gets the same checks as any other fetch.
      const oe = await tryOEmbed(deps, fields.oembedUrl, input);
      if (oe) return { fields: { ...fields, ...definedOnly(oe), url: fields.url ?? oe.url }, image: null };
    }
    return { fields, image: null };
  }
  if (mime && cfg.filePreviewTypes.some((glob) => globMatch(glob.toLowerCase(), mime))) {
    const fields: PreviewParseResult = {
      charset: '',
      truncated: false,
      title: fileTitle(res.headers['content-disposition'], res.url, cfg.maxTitleLength),
    };
    let image: PreviewImage | null = null;
    if (mime.startsWith('image/')) {
      const { bytes, complete } = await readPrefix(res.body, maxPageBytes + 1);
      const info = complete && bytes.length <= maxPageBytes ? await deps.identifyImage(bytes) : null;
      image = info && { bytes, ...info };
    } else res.body.destroy();
    return { fields, image };
  }
  res.body.destroy();
  throw Errors.notFound(`No preview for content of type ${mime || 'unknown'}`);
}

/** The fields of `o` that are set (so spreading them never erases a page's value). */
function definedOnly(o: PreviewParseResult): Partial<PreviewParseResult> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && v !== ''),
  ) as Partial<PreviewParseResult>;
}

export async function generatePreview(deps: GenerateDeps, input: GenerateInput): Promise<PreviewJson> {
  const endpoint = deps.providers?.endpointFor(input.url);
  const oEmbedFields = endpoint ? await tryOEmbed(deps, oEmbedRequestUrl(endpoint.url, input.url), input) : null;
  const { fields, image: fileImage } = oEmbedFields
    ? { fields: oEmbedFields, image: null }
    : await fromPage(deps, input);
  // A file described from its headers comes back from fromPage with no charset.
  deps.metrics?.previewsGenerated.inc({
    type: oEmbedFields ? 'oembed' : fields.charset === '' ? 'calculated' : 'opengraph',
  });
  const image =
    fileImage ??
    (fields.image
      ? await fetchPreviewImage(
          fields.image.url,
          input.fetch,
          byteLimit(input.cfg.maxPageSizeBytes),
          deps.identifyImage,
        )
      : null);

  const out: PreviewJson = {};
  const put = (k: string, v: string | number | undefined) => {
    if (v !== undefined && v !== '') out[k] = v;
  };
  put('og:title', fields.title);
  put('og:description', fields.description);
  put('og:site_name', fields.siteName);
  put('og:type', fields.type);
  put('og:url', fields.url ?? input.url);
  if (image) {
    const { row } = await storeUpload(deps, {
      origin: input.serverName,
      userId: input.userId,
      uploadName: null,
      contentType: image.contentType,
      body: bufferBody(image.bytes),
      maxBytes: 0,
      minBytes: 0,
      datastoreIds: input.domain.datastores.map((d) => d.id),
      requiresAuth: input.requiresAuth,
    });
    put('og:image', `mxc://${row.origin}/${row.mediaId}`);
    put('og:image:type', image.contentType);
    put('og:image:width', image.width);
    put('og:image:height', image.height);
    put('matrix:image:size', row.sizeBytes);
    // MSC2448: a client can show the blur while it fetches the image. Best effort: a preview
    // without it is still a preview.
    const blurhash = await deps.blurhashImage?.(image.bytes, input.domain).catch(() => null);
    if (blurhash) put('matrix:image:blurhash', blurhash);
  }
  return out;
}
