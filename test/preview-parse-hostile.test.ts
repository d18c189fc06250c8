// The URL-preview worker on pages built to hurt it (deep nesting, the CVE-2022-31052 shape,
// megabytes of text, binary bytes, tag soup) and through a real piscina pool. Each case asserts
// what comes back; how long the pathological cases take is measured in bench/preview-parse.mjs.
import t from 'tap';
import { Piscina } from 'piscina';
import previewHtml from '../workers/preview.js';
import type { PreviewParseResult } from '../workers/protocol.js';
import { LIMITS, preview, previewTask } from './helpers/preview-pages.js';

const DEPTH = 100_000;

t.test('100k nested <div>s: elements past depth 512 are flattened and the scan goes on to the end', async (t) => {
  const r = await preview(
    `<title>Deep</title>${'<div>'.repeat(DEPTH)}<p>Bottom text</p><img src="/deep.png" width="300" height="200">`,
  );
  t.strictSame(r, {
    charset: 'utf-8',
    title: 'Deep',
    description: 'Bottom text',
    image: { url: 'https://news.example/deep.png', width: 300, height: 200 },
    truncated: false,
  });
  const closed = await preview(`${'<div>'.repeat(DEPTH)}${'</div>'.repeat(DEPTH)}<p>After the nesting</p>`, {
    maxTags: 300_000,
  });
  t.equal(closed.description, 'After the nesting', 'the 512 real closes pop the stack; the rest find it empty');
  t.equal(closed.truncated, false);
});

t.test('100k <div>s then 100k unmatched </span>s: the close-tag search bound stops it, keeping the head', async (t) => {
  const page = `<head><meta property="og:title" content="Still here"></head>${'<div>'.repeat(DEPTH)}${'</span>'.repeat(DEPTH)}<meta property="og:description" content="never reached">`;
  const r = await preview(page);
  t.equal(r.truncated, true);
  t.equal(r.title, 'Still here');
  t.notOk('description' in r, 'nothing after the stop is read');
  const byTags = await preview(page, { maxTags: 1000 });
  t.equal(byTags.truncated, true, 'a small maxTags stops it sooner');
  t.equal(byTags.title, 'Still here');
});

t.test('5 MB of text: the description is cut to the limits and the whole page is scanned', async (t) => {
  const page = `<title>Big</title><p>${'lorem ipsum '.repeat(440_000)}</p><meta property="og:site_name" content="At the end">`;
  const r = await preview(page);
  t.equal(r.truncated, false);
  t.equal(r.siteName, 'At the end', 'a meta tag after 5 MB of text is still found');
  // 'lorem' and 'ipsum' are 5 letters: the last space within 199 characters is at 197.
  t.equal(r.description, `${Array(33).fill('lorem ipsum').join(' ').split(' ').slice(0, 33).join(' ')}…`);
  const wide = await preview(page, { limits: { ...LIMITS, maxLength: 10_000 } });
  t.equal(wide.description, Array(25).fill('lorem ipsum').join(' '), 'numWords (50) words when the length allows');
  const oneWord = await preview(`<p>${'x'.repeat(5_000_000)}</p>`);
  t.equal(oneWord.description, `${'x'.repeat(LIMITS.maxLength - 1)}…`);
  const inAttribute = await preview(`<meta property="og:title" content="${'title '.repeat(1_000_000)}">`);
  // 30 words are 179 characters; 25 words are 149, and the ellipsis makes 150.
  t.equal(inAttribute.title, `${Array(25).fill('title').join(' ')}…`);
});

t.test('empty input and binary bytes give an empty result', async (t) => {
  t.strictSame(await preview(new Uint8Array(0)), { charset: 'utf-8', truncated: false });
  t.strictSame(await preview(new Uint8Array(0), { contentType: null }), { charset: 'utf-8', truncated: false });
  // A deterministic stream of pseudo-random bytes, and a PNG header with a <title> after it.
  let seed = 1;
  const noise = new Uint8Array(1 << 20).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  t.strictSame(await preview(noise), { charset: 'windows-1252', truncated: false });
  const png = new Uint8Array([
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
    0,
    0,
    0,
    13,
    ...Buffer.from('<title>not a page</title>'),
  ]);
  t.strictSame(await preview(png, { contentType: 'text/html; charset=utf-8' }), { charset: 'utf-8', truncated: false });
});

t.test('tag soup never throws', async (t) => {
  const soup = [
    '<!--',
    '<!-- never closed <title>x</title>',
    '<script>',
    '<script><!--',
    '<title>',
    '<title>no end',
    '<meta',
    '<meta property="og:title" content="unterminated',
    '<img src=',
    `<a ${'x=y '.repeat(50_000)}>`,
    '</>',
    '<>',
    '<!DOCTYPE',
    '<![CDATA[',
    '<?xml',
    '&#xFFFFFFFF;&#0;&#xD800;',
    '<svg><title>a</svg></title>',
    '</head></head><head>',
    '<body><body>',
    `${'<p>'.repeat(10_000)}`,
    `${'<table><tr><td>'.repeat(5_000)}`,
    '\u0000<title>',
    '<base href="::::">',
  ];
  for (const page of soup) {
    const r: PreviewParseResult = await preview(page);
    t.equal(typeof r.truncated, 'boolean', JSON.stringify(page.slice(0, 40)));
  }
  // Random strings over the characters that drive a tokenizer's states.
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const alphabet = [
    '<',
    '>',
    '/',
    '=',
    '"',
    "'",
    ' ',
    '!',
    '-',
    '&',
    '#',
    ';',
    'a',
    'p',
    'title',
    'meta',
    'script',
    'svg',
    'og:title',
    'content',
  ];
  for (let i = 0; i < 300; i++) {
    const page = Array.from({ length: 200 }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    await t.resolves(preview(page), 'random page ' + i);
  }
});

t.test('a malformed task is a programming error and throws', async (t) => {
  await t.rejects(previewHtml({ ...previewTask('<p>'), op: 'thumbnail' as never }), /op: expected 'preview-html'/);
  await t.rejects(previewHtml({ ...previewTask('<p>'), bytes: '<p>' as never }), /bytes: expected a Uint8Array/);
  await t.rejects(
    previewHtml(previewTask('<p>', { pageUrl: 'javascript:alert(1)' })),
    /pageUrl: expected an absolute http\(s\) URL/,
  );
  await t.rejects(
    previewHtml(previewTask('<p>', { limits: { ...LIMITS, numWords: 0 } })),
    /limits\.numWords: expected a positive integer, got 0/,
  );
  await t.rejects(previewHtml(previewTask('<p>', { maxTags: 1.5 })), /maxTags: expected a positive integer/);
});

t.test('through a piscina pool: the bytes are transferred to the worker thread, not copied', async (t) => {
  const pool = new Piscina({ filename: new URL('../workers/preview.js', import.meta.url).href, maxThreads: 1 });
  t.teardown(() => pool.destroy());
  const task = previewTask(
    '<head><meta property="og:title" content="Off the main thread"></head><body><p>Text</p></body>',
  );
  const sent = task.bytes.byteLength;
  t.ok(sent > 0);
  const result = (await pool.run(task, { transferList: [task.bytes.buffer as ArrayBuffer] })) as PreviewParseResult;
  t.equal(task.bytes.byteLength, 0, 'the sender no longer holds the bytes (detached by the transfer)');
  t.strictSame(result, { charset: 'utf-8', title: 'Off the main thread', description: 'Text', truncated: false });
  await t.rejects(
    pool.run({ op: 'nope' }),
    /op: expected 'preview-html'/,
    'a bad task rejects the run, the pool stays usable',
  );
  t.equal(((await pool.run(previewTask('<title>Again</title>'))) as PreviewParseResult).title, 'Again');
});
