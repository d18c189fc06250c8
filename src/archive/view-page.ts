import type { ExportMetadata } from './server-exports.js';

// The export's human page (MMR's view): the parts with their download links. Every value is
// escaped: the entity is a user ID or server name a requester chose.

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function exportViewPage(m: ExportMetadata): string {
  const state = m.error
    ? `<p><strong>This export failed:</strong> ${escape(m.error)}</p>`
    : m.finished
      ? '<p>This export is complete.</p>'
      : '<p>This export is still being written; reload this page to see more parts.</p>';
  const rows = m.parts
    .map(
      (p) =>
        `<li><a href="part/${p.index}" download="${escape(p.name)}">${escape(p.name)}</a> (${escape(size(p.size))})</li>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Media export for ${escape(m.entity)}</title></head>
<body>
<h1>Media export for ${escape(m.entity)}</h1>
${state}
<ul>
${rows}
</ul>
<p>Keep this page's address secret: anyone who has it can download and delete this export.
To delete it, send a DELETE request to this address without the trailing <code>/view</code>.</p>
</body>
</html>
`;
}
