import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The oEmbed provider list: which page URLs have an oEmbed endpoint, and where. The bundled
// assets/oembed-providers.json holds the large sites in oembed.com's providers.json format, so an
// operator can drop in the full list from oembed.com with urlPreviews.oEmbedProvidersFile.

interface ProviderFile {
  provider_name?: unknown;
  endpoints?: Array<{ schemes?: unknown; url?: unknown }>;
}

export interface OEmbedEndpoint {
  providerName: string;
  /** The endpoint URL with {format} already replaced by json. */
  url: string;
}

interface CompiledScheme {
  /** Lower-cased scheme; `*` matches any run of characters. */
  glob: string;
  endpoint: OEmbedEndpoint;
}

export const BUNDLED_PROVIDERS = fileURLToPath(new URL('../../../assets/oembed-providers.json', import.meta.url));

/**
 * Wildcard match in O(text x glob) at worst: on a mismatch only the last `*` is widened. A
 * regular expression with several `.*` can backtrack polynomially on a crafted URL.
 */
export function globMatch(glob: string, text: string): boolean {
  let g = 0,
    t = 0,
    star = -1,
    mark = 0;
  while (t < text.length) {
    if (g < glob.length && glob[g] === '*') {
      star = g++;
      mark = t;
    } else if (g < glob.length && glob[g] === text[t]) {
      g++;
      t++;
    } else if (star >= 0) {
      g = star + 1;
      t = ++mark;
    } else return false;
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

export class OEmbedProviders {
  private constructor(private readonly schemes: readonly CompiledScheme[]) {}

  /** Reads a providers.json; throws naming the file when it is not a list of providers. */
  static load(path: string): OEmbedProviders {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`oEmbed providers file ${path}: ${(e as Error).message}`);
    }
    if (!Array.isArray(doc)) throw new Error(`oEmbed providers file ${path}: expected a JSON list of providers`);
    const schemes: CompiledScheme[] = [];
    for (const p of doc as ProviderFile[]) {
      for (const e of Array.isArray(p?.endpoints) ? p.endpoints : []) {
        if (typeof e?.url !== 'string' || !Array.isArray(e.schemes)) continue;
        let url: string;
        try {
          url = new URL(e.url.replace('{format}', 'json')).href;
        } catch {
          continue; // one bad entry in a 300-provider list must not disable the rest
        }
        const endpoint = { providerName: typeof p.provider_name === 'string' ? p.provider_name : '', url };
        for (const s of e.schemes)
          if (typeof s === 'string' && s.length <= 500) schemes.push({ glob: s.toLowerCase(), endpoint });
      }
    }
    return new OEmbedProviders(schemes);
  }

  get size(): number {
    return this.schemes.length;
  }

  /** The endpoint whose scheme matches the page URL, if any. */
  endpointFor(pageUrl: string): OEmbedEndpoint | null {
    const url = pageUrl.toLowerCase();
    for (const s of this.schemes) if (globMatch(s.glob, url)) return s.endpoint;
    return null;
  }
}

/** The request URL for a page at an endpoint (JSON format; maxwidth keeps thumbnails modest). */
export function oEmbedRequestUrl(endpoint: string, pageUrl: string): string {
  const u = new URL(endpoint);
  u.searchParams.set('url', pageUrl);
  u.searchParams.set('format', 'json');
  return u.href;
}
