/**
 * Locations come from our own content addresses or from our database; a store still refuses
 * anything that could name a path or key outside its own (`..`, empty segments, odd bytes).
 */
export function checkedLocation(location: string): string {
  if (!/^[A-Za-z0-9_\-./]+$/.test(location) || location.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new Error(`refusing unsafe datastore location ${JSON.stringify(location)}`);
  }
  return location;
}
