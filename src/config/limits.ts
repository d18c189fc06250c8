// MMR documents its byte limits as "0 to disable" (downloads.maxBytes, thumbnails.maxSourceBytes,
// thumbnails.maxAnimateSizeBytes, urlPreviews.maxPageSizeBytes) and its code applies a limit only
// when it is above 0. Code reading such a key goes through byteLimit so 0 (or less) means no limit.
export function byteLimit(configured: number): number {
  return configured > 0 ? configured : Infinity;
}
