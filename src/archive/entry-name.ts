// Which names an archive entry may have. The reader builds no paths from them, but callers,
// other tools and the manifest's file_name do: so one canonical, relative, plain form only,
// which also makes the duplicate check exact ("a/./b" cannot pose as a second "a/b").

/** Why `name` is not allowed, or null when it is fine. */
export function checkEntryName(name: string): string | null {
  if (name === '' || name === './') return 'empty name';
  if (name.includes('\0')) return 'name contains NUL';
  if (name.startsWith('/')) return 'absolute path';
  if (name.includes('\\')) return 'backslash in name';
  if (/^[A-Za-z]:/.test(name)) return 'drive-letter path';
  const body = name.replace(/^(\.\/)+/, '').replace(/\/$/, '');
  for (const seg of body.split('/')) {
    if (seg === '..') return 'path escapes the archive (".." segment)';
    if (seg === '' || seg === '.') return 'non-canonical path (empty or "." segment)';
    if (/[\x00-\x1f\x7f]/.test(seg)) return 'control character in name';
  }
  return null;
}
