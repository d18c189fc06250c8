import type { LoadedConfig } from '../config/schema.js';

// Whether libvips' SVG loader should be open in this process: some homeserver's
// thumbnails.types (global or per-domain) lists image/svg+xml. One answer for the process,
// because the loader's block is process-wide (workers/image/harden.ts); each homeserver's own
// list still decides which of its uploads reach a decoder.

const SVG = 'image/svg+xml';
const answers = new WeakMap<LoadedConfig, boolean>();

export function svgConfigured(cfg: LoadedConfig): boolean {
  let yes = answers.get(cfg);
  if (yes === undefined) {
    yes =
      cfg.global.thumbnails.types.includes(SVG) ||
      [...cfg.domains.values()].some((d) => d.thumbnails.types.includes(SVG));
    answers.set(cfg, yes);
  }
  return yes;
}
