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
  'VipsForeignLoadMagick', 'VipsForeignLoadMagick7', 'VipsForeignLoadPdf', 'VipsForeignLoadPdfium', 'VipsForeignLoadPoppler',
  'VipsForeignLoadOpenslide', 'VipsForeignLoadFits', 'VipsForeignLoadMat', 'VipsForeignLoadMatrix', 'VipsForeignLoadCsv',
  'VipsForeignLoadAnalyze', 'VipsForeignLoadRaw', 'VipsForeignLoadVips', 'VipsForeignLoadPpm', 'VipsForeignLoadRad',
  'VipsForeignLoadJp2k', 'VipsForeignLoadJxl', 'VipsForeignLoadOpenexr', 'VipsForeignLoadDcraw', 'VipsForeignLoadUhdr',
];

export function restrictLoaders(sharp: typeof sharpType): void {
  sharp.block({ operation: BLOCKED_LOADERS });
}
