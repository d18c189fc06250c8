// index.html: the human-readable listing MMR puts beside manifest.json, so someone who
// unpacked every part can browse their files. Built in three pieces like the manifest (the
// rows are spooled to disk). Everything from the database is escaped: names, IDs, types.

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function indexHead(entityId: string): string {
  const e = escapeHtml(entityId);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>${e} media export</title>
<style>
body { font-family: sans-serif; background: #eee; color: #111; margin: 0; }
.container { max-width: 60em; margin: 2em auto; background: #fff; padding: 1.5em; border-radius: 4px; }
table { border-collapse: collapse; word-break: break-word; }
th, td { border: 1px solid #ccc; padding: 0.5em; text-align: left; }
.muted { display: block; color: #888; }
</style>
</head>
<body>
<div class="container">
<h1>${e} media export</h1>
<p>Once every part of this export is extracted into one folder, each file can be opened from here.</p>
<table>
<thead><tr><th>File name</th><th>Type</th><th>Size</th><th>Uploaded</th></tr></thead>
<tbody>
`;
}

export interface IndexRow {
  fileName: string;
  uploadName: string | null;
  origin: string;
  mediaId: string;
  contentType: string | null;
  sizeBytes: number;
  creationTs: number;
}

export function indexRow(r: IndexRow): string {
  // "./" keeps a name like "host:8448__id" from reading as a URL scheme.
  const href = escapeHtml(`./${encodeURIComponent(r.fileName)}`);
  const shown = r.uploadName ? escapeHtml(r.uploadName) : '&lt;no name&gt;';
  const mxc = escapeHtml(`mxc://${r.origin}/${r.mediaId}`);
  const date = new Date(r.creationTs).toUTCString();
  return `<tr><td><a href="${href}"><code>${shown}</code></a><span class="muted"><code>${mxc}</code></span></td><td>${escapeHtml(r.contentType ?? '')}</td><td>${humanBytes(r.sizeBytes)}</td><td>${escapeHtml(date)}</td></tr>\n`;
}

export const INDEX_TAIL = `</tbody>
</table>
</div>
</body>
</html>
`;
