// The file datastore's layout, shared by the datastore (src/datastores/file.ts, through
// protocol.ts) and the upload sink thread that links prestaged uploads: a blob lives at
// ab/cd/<sha256> under the store's root.

/** The location of a blob by its SHA-256 hex digest; throws on anything else. */
export function contentAddress(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('commit: not a sha256 hex digest');
  return `${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;
}
