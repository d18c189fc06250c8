import type sharpType from 'sharp';

// libvips loaders a media repository never needs, blocked by name (MMR CVE-2024-56515, Synapse
// CVE-2024-53863: a file claiming one type reaching a decoder like ImageMagick or a PDF
// renderer). sharp's prebuilt libvips has none of them, but a system libvips may.
//
// Block lists are process-wide and every worker thread applies this one as it starts. Only
// ever *adding* names keeps that safe while other threads decode: blocking all loaders and
// then unblocking the trusted ones (the obvious way) fails decodes that start in between with
// "operation is blocked" (seen with 16 threads; test/thumbnail-pools.test.ts reproduces it).
// VIPS_BLOCK_UNTRUSTED, set by the pools before the first worker loads libvips, blocks
// whatever else libvips itself marks untrusted.
export const BLOCKED_LOADERS = [
  'VipsForeignLoadMagick',
  'VipsForeignLoadMagick7',
  'VipsForeignLoadPdf',
  'VipsForeignLoadPdfium',
  'VipsForeignLoadPoppler',
  'VipsForeignLoadOpenslide',
  'VipsForeignLoadFits',
  'VipsForeignLoadMat',
  'VipsForeignLoadMatrix',
  'VipsForeignLoadCsv',
  'VipsForeignLoadAnalyze',
  'VipsForeignLoadRaw',
  'VipsForeignLoadVips',
  'VipsForeignLoadPpm',
  'VipsForeignLoadRad',
  'VipsForeignLoadJp2k',
  'VipsForeignLoadJxl',
  'VipsForeignLoadOpenexr',
  'VipsForeignLoadDcraw',
  'VipsForeignLoadUhdr',
];

export function restrictLoaders(sharp: typeof sharpType): void {
  sharp.block({ operation: BLOCKED_LOADERS });
}

// SVG (librsvg) is a loader libvips marks untrusted, so VIPS_BLOCK_UNTRUSTED blocks it, and an
// operator who lists image/svg+xml in thumbnails.types got "unsupported image format". It is
// therefore switched by name, and only it: unblocked while some configured thumbnails.types
// lists SVG, blocked otherwise (also where libvips started without VIPS_BLOCK_UNTRUSTED, as in
// a process that loaded sharp before the pools set it). The switch is process-wide, so every
// task carries the same process-wide decision (src/pools/svg-loader.ts): threads agree, and the
// state only changes on a reload that changes it. Which requests may reach it at all is still
// the per-homeserver type check in source.ts, before any decoder sees the bytes.
export const SVG_LOADER = 'VipsForeignLoadSvg';

/** What this thread last set (each worker thread has its own copy of this module). */
let svgLoaderAllowed: boolean | undefined;

export function allowSvgLoader(sharp: typeof sharpType, allowed: boolean): void {
  if (svgLoaderAllowed === allowed) return;
  // The parent class: its file, buffer and source variants follow it.
  if (allowed) sharp.unblock({ operation: [SVG_LOADER] });
  else sharp.block({ operation: [SVG_LOADER] });
  svgLoaderAllowed = allowed;
}
