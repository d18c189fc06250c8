import type { UrlPreviewsSection } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { BUNDLED_PROVIDERS, OEmbedProviders } from './oembed-providers.js';

/**
 * The oEmbed providers for the current config, loaded once per file path. At start a broken
 * file throws (the operator sees it at once); after a config reload it is logged and the
 * previous list stays in use.
 */
export function providersLoader(cfg: () => UrlPreviewsSection, log: Logger): () => OEmbedProviders {
  let loadedPath: string | null = null;
  let current: OEmbedProviders | null = null;
  return () => {
    const path = cfg().oEmbedProvidersFile || BUNDLED_PROVIDERS;
    if (path !== loadedPath) {
      try {
        current = OEmbedProviders.load(path);
        log.info('oEmbed providers loaded', { file: path, schemes: current.size });
      } catch (e) {
        if (!current) throw e;
        log.error('oEmbed providers file rejected; keeping the previous list', { error: e as Error });
      }
      loadedPath = path;
    }
    return current!;
  };
}
