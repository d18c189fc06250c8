import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

// Where Synapse keeps a file under its media_store_path, and the checks that keep a hostile or
// corrupt database row from making us read anything outside it:
//   local_content/<id[0:2]>/<id[2:4]>/<id[4:]>
//   remote_content/<origin>/<fsid[0:2]>/<fsid[2:4]>/<fsid[4:]>
// Every component must be non-empty, not `.` or `..`, and drawn from the characters Synapse
// itself allows (letters, digits, `_-.[]:`; the last three for server names with ports and
// IPv6 literals), so no `/`, NUL or other separator can appear. Then the real path (symlinks
// resolved) must lie under the real path of its top-level folder: an operator may mount
// local_content elsewhere with a symlink, but a symlink inside it pointing out is refused.

const COMPONENT = /^[A-Za-z0-9_\-.[\]:]+$/;

/** Why a path component is refused, or null when it is safe. */
export function badComponent(name: string | null | undefined): string | null {
  if (name === null || name === undefined || name === '') return 'empty';
  if (name === '.' || name === '..') return `'${name}' is not a file name`;
  if (!COMPONENT.test(name)) return `${JSON.stringify(name)} has characters Synapse never writes`;
  return null;
}

/** The three components Synapse splits a media or filesystem ID into. */
function splitId(id: string): [string, string, string] {
  return [id.slice(0, 2), id.slice(2, 4), id.slice(4)];
}

export type Located =
  { ok: true; path: string; size: number } | { ok: false; reason: 'unsafe' | 'missing'; detail: string };

/**
 * Finds one item's file: `top` is 'local_content' or 'remote_content/<origin>' (origin already
 * checked by the caller for remote rows), `id` the media ID or filesystem ID.
 */
export async function locate(store: MediaStore, top: 'local' | { origin: string }, id: string): Promise<Located> {
  const parts = top === 'local' ? ['local_content'] : ['remote_content', top.origin];
  for (const p of [...parts.slice(1), id]) {
    const why = badComponent(p);
    if (why) return { ok: false, reason: 'unsafe', detail: why };
  }
  const pieces = splitId(id);
  for (const p of pieces) {
    const why = badComponent(p);
    if (why) return { ok: false, reason: 'unsafe', detail: `ID ${JSON.stringify(id)} is too short or malformed` };
  }
  const root = await store.root(parts[0] as 'local_content' | 'remote_content');
  if (!root) return { ok: false, reason: 'missing', detail: `${parts[0]}/ does not exist in the media store` };
  const candidate = join(root, ...parts.slice(1), ...pieces);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { ok: false, reason: 'missing', detail: `${join(...parts, ...pieces)} not found` };
    throw e;
  }
  if (!real.startsWith(root + sep))
    return { ok: false, reason: 'unsafe', detail: `${join(...parts, ...pieces)} resolves outside the media store` };
  const st = await stat(real);
  if (!st.isFile())
    return { ok: false, reason: 'missing', detail: `${join(...parts, ...pieces)} is not a regular file` };
  return { ok: true, path: real, size: st.size };
}

/** The media store folder, with the real paths of its top-level folders resolved once. */
export class MediaStore {
  private readonly roots = new Map<string, Promise<string | null>>();
  constructor(readonly base: string) {}

  root(top: 'local_content' | 'remote_content'): Promise<string | null> {
    let r = this.roots.get(top);
    if (!r) {
      r = realpath(join(this.base, top)).catch(() => null);
      this.roots.set(top, r);
    }
    return r;
  }
}
