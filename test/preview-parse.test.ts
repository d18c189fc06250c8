// The URL-preview worker on ordinary pages: which field comes from where, encodings, URL
// resolution and text limits. Hostile pages and the piscina pool: preview-parse-hostile.test.ts.
import t from 'tap';
import { bytesOf, preview } from './helpers/preview-pages.js';

t.test('a full OpenGraph page: every field from og:*, relative image resolved against the page', async (t) => {
  const page = `<!doctype html><html><head>
    <title>The document title loses</title>
    <meta property="og:title" content="  The OG title  ">
    <meta property="og:description" content="What the story is about.">
    <meta property="og:site_name" content="Example News">
    <meta property="og:type" content="article">
    <meta property="og:url" content="https://news.example/s/42">
    <meta property="og:image" content="../img/cover.jpg">
    <meta property="og:image:width" content="1200">
    <meta property="og:image:height" content="630">
    <meta property="og:image:type" content="image/jpeg">
    <meta name="twitter:title" content="Twitter title loses">
    <meta name="description" content="Meta description loses">
    <link rel="alternate" type="application/json+oembed" href="/oembed?url=s%2F42">
  </head><body><h1>Heading</h1><p>Body text.</p><img src="/big.png" width="2000" height="1500"></body></html>`;
  t.strictSame(await preview(page), {
    charset: 'utf-8',
    title: 'The OG title',
    description: 'What the story is about.',
    siteName: 'Example News',
    type: 'article',
    url: 'https://news.example/s/42',
    image: { url: 'https://news.example/articles/img/cover.jpg', width: 1200, height: 630, type: 'image/jpeg' },
    oembedUrl: 'https://news.example/oembed?url=s%2F42',
    truncated: false,
  });
});

t.test('a Twitter card only: twitter:title, twitter:description, twitter:image', async (t) => {
  const page = `<html><head><meta name="twitter:card" content="summary_large_image">
    <meta name="twitter:title" content="Card title"><meta name="twitter:description" content="Card description">
    <meta name="twitter:image" content="https://cdn.example/card.png"></head><body><h1>Heading</h1><p>Body</p></body></html>`;
  t.strictSame(await preview(page), {
    charset: 'utf-8',
    title: 'Card title',
    description: 'Card description',
    image: { url: 'https://cdn.example/card.png' },
    truncated: false,
  });
  const src = await preview(
    '<meta property="twitter:image:src" content="/card-src.png"><img src="/x.png" width="900" height="900">',
  );
  t.strictSame(
    src.image,
    { url: 'https://news.example/card-src.png' },
    'twitter:image:src, given as a property, beats <img>',
  );
});

t.test('no meta tags: <title>, body text without page chrome or code, and the largest sensible <img>', async (t) => {
  const page = `<html><head><title>Plain   page</title><script>var hidden = "script text";</script><style>p { color: red }</style></head>
    <body><header><a href="/">Site header</a></header><nav><ul><li>Home</li><li>About</li></ul></nav>
    <main><h1>Main heading</h1><p>First   paragraph
      with <b>bold</b>text.</p><noscript>Enable JavaScript</noscript><template><p>template</p></template>
      <svg><title>icon</title><text>svg text</text></svg><p>Second&nbsp;paragraph.</p></main>
    <aside>Related links</aside><footer>Copyright</footer>
    <img src="/pixel.gif" width="1" height="1"><img src="/banner.png" width="600" height="20">
    <img src="/small.png" width="100" height="80"><img src="/photo.jpg" width="640px" height="480">
    <img src="/no-size.png"><img src="/percent.png" width="100%" height="900">
    <img src="/stripe.png" width="1800" height="400"><img src="data:image/png;base64,iVBORw0KGgo=" width="2000" height="2000">
    <img src="/same-area-later.jpg" width="480" height="640">
  </body></html>`;
  t.strictSame(await preview(page), {
    charset: 'utf-8',
    title: 'Plain page',
    description: 'Main heading First paragraph with boldtext. Second paragraph.',
    image: { url: 'https://news.example/photo.jpg', width: 640, height: 480 },
    truncated: false,
  });
  const described = await preview(
    '<title>T</title><meta name="description" content="From the meta tag"><p>Body text</p>',
  );
  t.equal(described.description, 'From the meta tag', '<meta name="description"> beats body text');
});

t.test('title fallbacks: first h1, then h2, then h3; <title> inside svg does not count', async (t) => {
  t.equal(
    (
      await preview(
        '<body><svg><title>icon</title></svg><h2>Second level</h2><h1>First <em>level</em></h1><h1>Later</h1>',
      )
    ).title,
    'First level',
  );
  t.equal((await preview('<body><h3>Third</h3><h2>Second</h2>')).title, 'Second');
  t.equal(
    (await preview('<body><h1><img src="/logo.png"></h1><h3>Third</h3>')).title,
    'Third',
    'an empty h1 is skipped',
  );
  t.equal((await preview('<body><title>   </title><h1>Heading</h1>')).title, 'Heading', 'a blank <title> is skipped');
  t.equal(
    (await preview('<meta property="og:title" content="   "><meta name="twitter:title" content="Tw"><title>T</title>'))
      .title,
    'Tw',
    'a blank og:title is skipped',
  );
});

t.test('ISO-8859-1 from the Content-Type header, read as windows-1252 as browsers do', async (t) => {
  const page = bytesOf(
    '<title>Caf',
    [0xe9],
    ' in M',
    [0xfc],
    'nchen</title><p>Gr',
    [0xfc],
    [0xdf],
    'e ',
    [0x96],
    ' it',
    [0x92],
    's ',
    [0x80],
    '5</p>',
  );
  const r = await preview(page, { contentType: 'text/html; charset=ISO-8859-1' });
  t.equal(r.title, 'Café in München');
  t.equal(r.description, 'Grüße – it’s €5', '0x80-0x9F are windows-1252 punctuation, not C1 controls');
  t.equal(r.charset, 'windows-1252', 'the WHATWG name of the decoder ISO-8859-1 maps to');
});

// 日本 = 93 FA 96 7B, あいう = 82 A0 82 A2 82 A4, テスト = 83 65 83 58 83 67 in Shift_JIS.
const NIHON = [0x93, 0xfa, 0x96, 0x7b];
const AIU = [0x82, 0xa0, 0x82, 0xa2, 0x82, 0xa4];
const TESUTO = [0x83, 0x65, 0x83, 0x58, 0x83, 0x67];

t.test('Shift_JIS declared only by <meta charset>', async (t) => {
  const page = bytesOf(
    '<html><head><!-- <meta charset="euc-jp"> --><meta charset="Shift_JIS"><title>',
    NIHON,
    '</title>',
    '<meta property="og:description" content="',
    TESUTO,
    '"></head><body><p>',
    AIU,
    '</p></body></html>',
  );
  const r = await preview(page, { contentType: 'text/html' });
  t.equal(r.charset, 'shift_jis', 'the commented-out meta is not read');
  t.equal(r.title, '日本');
  t.equal(r.description, 'テスト');
});

t.test('Shift_JIS declared only by <meta http-equiv="Content-Type">', async (t) => {
  const page = bytesOf(
    '<html><head><meta http-equiv="content-type" content="text/html; charset=Shift_JIS"></head><body><h1>',
    NIHON,
    '</h1><p>',
    AIU,
    '</p></body></html>',
  );
  const r = await preview(page, { contentType: null });
  t.equal(r.charset, 'shift_jis');
  t.equal(r.title, '日本');
  t.equal(r.description, '日本 あいう');
});

t.test('charset order: BOM beats the header, the header beats <meta>, an unknown label falls through', async (t) => {
  const utf8Bom = bytesOf([0xef, 0xbb, 0xbf], [...Buffer.from('<title>Café ☃</title>')]);
  const bom = await preview(utf8Bom, { contentType: 'text/html; charset=iso-8859-1' });
  t.equal(bom.charset, 'utf-8');
  t.equal(bom.title, 'Café ☃');
  const utf16 = bytesOf([0xff, 0xfe], [...Buffer.from('<title>Ünïcödé ☃</title>', 'utf16le')]);
  const le = await preview(utf16, { contentType: 'text/html; charset=utf-8' });
  t.equal(le.charset, 'utf-16le');
  t.equal(le.title, 'Ünïcödé ☃');
  const sjisPage = bytesOf('<meta charset="utf-8"><title>', NIHON, '</title>');
  t.equal(
    (await preview(sjisPage, { contentType: 'text/html;charset="shift_jis"' })).title,
    '日本',
    'quoted header label beats the meta',
  );
  const unknown = await preview(bytesOf('<meta charset=shift_jis><title>', NIHON, '</title>'), {
    contentType: 'text/html; charset=x-no-such-thing',
  });
  t.equal(unknown.charset, 'shift_jis');
  t.equal(unknown.title, '日本');
});

t.test('no declaration: valid UTF-8 is UTF-8 (even cut mid-character), anything else windows-1252', async (t) => {
  const utf8 = await preview(new TextEncoder().encode('<title>Café ☃</title>'), { contentType: 'text/html' });
  t.equal(utf8.charset, 'utf-8');
  t.equal(utf8.title, 'Café ☃');
  const full = new TextEncoder().encode('<p>Café ☃');
  const cut = await preview(full.subarray(0, full.length - 1), { contentType: null });
  t.equal(cut.charset, 'utf-8', 'the fetcher cut the body inside ☃: still UTF-8');
  t.equal(cut.description, 'Café');
  const legacy = await preview(bytesOf('<title>', [0x93], 'Caf', [0xe9], [0x94], ' costs ', [0x80], '5</title>'), {
    contentType: 'text/html',
  });
  t.equal(legacy.charset, 'windows-1252');
  t.equal(legacy.title, '“Café” costs €5');
});

t.test('<base href> applies to URLs after it; the first one wins', async (t) => {
  const r = await preview(`<head><meta property="og:url" content="before"><base href="https://static.example/assets/">
    <base href="https://ignored.example/"><meta property="og:image" content="cover.png">
    <link rel="Alternate" type="Application/JSON+oEmbed" href="oembed?id=1"></head>`);
  t.equal(r.url, 'https://news.example/articles/2024/before', 'og:url before the <base> resolves against the page');
  t.equal(r.image?.url, 'https://static.example/assets/cover.png');
  t.equal(r.oembedUrl, 'https://static.example/assets/oembed?id=1');
  const bad = await preview('<base href="javascript:alert(1)"><meta property="og:image" content="x.png">');
  t.equal(bad.image?.url, 'https://news.example/articles/2024/x.png', 'a non-http base is ignored');
});

t.test('javascript:, data:, other schemes and over-long URLs are dropped, and the next source is used', async (t) => {
  const r =
    await preview(`<meta property="og:image" content=" JaVaScRiPt:alert(1)"><meta property="og:image:url" content="data:image/png;base64,AAAA">
    <meta property="og:image:secure_url" content="file:///etc/passwd"><meta name="twitter:image" content="https://cdn.example/${'a'.repeat(2100)}.png">
    <meta property="og:url" content="javascript:alert(1)"><link rel="alternate" type="application/json+oembed" href="ftp://x.example/o">
    <img src="javascript:alert(1)" width="500" height="500"><img src="/ok.png" width="100" height="100">`);
  t.strictSame(r.image, { url: 'https://news.example/ok.png', width: 100, height: 100 });
  t.notOk('url' in r, 'og:url dropped');
  t.notOk('oembedUrl' in r, 'ftp oEmbed dropped');
  // 'https://news.example/' is 21 characters.
  const atLimit = await preview(`<meta property="og:image" content="/${'b'.repeat(2027)}">`);
  t.equal(atLimit.image?.url.length, 2048, 'a URL of exactly 2048 characters is kept');
  const overLimit = await preview(`<meta property="og:image" content="/${'b'.repeat(2028)}">`);
  t.notOk('image' in overLimit, 'one of 2049 is not');
});

t.test('oEmbed discovery: the JSON link, entity-decoded; the XML one is skipped', async (t) => {
  const r =
    await preview(`<head><link rel="alternate" type="text/xml+oembed" href="https://www.youtube.com/oembed?format=xml">
    <link rel="alternate" type="application/json+oembed" href="https://www.youtube.com/oembed?url=https%3A%2F%2Fyoutu.be%2Fx&amp;format=json" title="Video"></head>`);
  t.equal(r.oembedUrl, 'https://www.youtube.com/oembed?url=https%3A%2F%2Fyoutu.be%2Fx&format=json');
});

t.test('entities are decoded in attributes and text', async (t) => {
  const r = await preview(
    '<title>Tom &amp; Jerry &#x2603;</title><meta property="og:description" content="&lt;3 caf&eacute; &#9731; &quot;q&quot;"><meta property="og:site_name" content="A&amp;B">',
  );
  t.equal(r.title, 'Tom & Jerry ☃');
  t.equal(r.description, '<3 café ☃ "q"');
  t.equal(r.siteName, 'A&B');
});

t.test('the first occurrence of each property wins, whether written as property or name', async (t) => {
  const r = await preview(`<meta name="og:title" content="First"><meta property="og:title" content="Second">
    <meta property="og:image" content="/one.png"><meta property="og:image:width" content="10"><meta property="og:image" content="/two.png">
    <meta property="og:image:width" content="20"><meta property="og:image:height" content="abc">`);
  t.equal(r.title, 'First');
  t.strictSame(r.image, { url: 'https://news.example/one.png', width: 10 }, 'a non-numeric height is left out');
});

const SMALL = { numWords: 5, maxLength: 30, numTitleWords: 3, maxTitleLength: 12 };
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

t.test('word and length limits for titles and descriptions', async (t) => {
  const page = (title: string, description: string) =>
    `<meta property="og:title" content="${title}"><meta property="og:description" content="${description}">`;
  const words = await preview(page('one two three four', 'alpha beta gamma delta epsilon zeta eta'), { limits: SMALL });
  t.equal(words.title, 'one two…', '3 words (13 characters) cut at the last space that leaves room for the ellipsis');
  t.equal(words.description, 'alpha beta gamma delta epsilon', '5 words, exactly 30 characters: no ellipsis');
  const hard = await preview(page('abcdefghijklmnop', 'x'.repeat(100)), { limits: SMALL });
  t.equal(hard.title, 'abcdefghijk…', 'no word boundary: hard cut');
  t.equal(hard.description, `${'x'.repeat(29)}…`);
  const spaced = await preview(page('a  b\n\tc d', '   '), { limits: SMALL });
  t.equal(spaced.title, 'a b c', 'whitespace collapsed, then 3 words');
  t.notOk('description' in spaced, 'a blank description is absent');
  const site = await preview('<meta property="og:site_name" content="Big site name here">', { limits: SMALL });
  t.equal(site.siteName, 'Big site…', 'site_name takes the title limits');
});

t.test('limits count code points and never split an emoji', async (t) => {
  const r = await preview(
    `<meta property="og:title" content="${'😀'.repeat(13)}"><meta property="og:description" content="${'🇯🇵'.repeat(20)}">`,
    { limits: SMALL },
  );
  t.equal(r.title, `${'😀'.repeat(11)}…`, '11 emoji and the ellipsis are 12 characters');
  t.notOk(LONE_SURROGATE.test(r.title!), 'no lone surrogate');
  t.equal(r.description, `${'🇯🇵'.repeat(14)}…`, 'flags (two code points each) are kept whole: 28 + 1 characters');
  const mixed = await preview('<meta property="og:title" content="I ❤️ 🍕 so much">', { limits: SMALL });
  t.equal(mixed.title, 'I ❤️ 🍕', '3 words; ❤️ is two code points, 6 in all');
  t.ok(Array.from(mixed.title!).length <= SMALL.maxTitleLength);
});

t.test('maxTags stops the scan: what came before is kept and the result says truncated', async (t) => {
  const page = `<head><meta property="og:title" content="Early"></head><body>${'<p>x</p>'.repeat(100)}<meta property="og:description" content="Late">`;
  const r = await preview(page, { maxTags: 50 });
  t.equal(r.truncated, true);
  t.equal(r.title, 'Early');
  t.not(r.description, 'Late');
  t.equal((await preview(page)).description, 'Late', 'the default bound reads the whole page');
});

t.test('a page whose head gives title, description and image is not read past the head', async (t) => {
  const head = '<meta property="og:title" content="T"><meta property="og:description" content="D">';
  const body = `<body>${'<p>filler</p>'.repeat(1000)}</body>`;
  const complete = await preview(`<html><head>${head}<meta property="og:image" content="/i.png"></head>${body}`, {
    maxTags: 20,
  });
  t.equal(complete.truncated, false, 'stopped at </head> because nothing was missing, before maxTags');
  t.equal(complete.image?.url, 'https://news.example/i.png');
  const noImage = await preview(`<html><head>${head}</head>${body}`, { maxTags: 20 });
  t.equal(noImage.truncated, true, 'without an image the body had to be read, so maxTags stopped it');
  const badImage = await preview(`<html><head>${head}<meta property="og:image" content="javascript:x"></head>${body}`, {
    maxTags: 20,
  });
  t.equal(badImage.truncated, true, 'an unusable og:image does not count as found');
});

t.test('pageUrl is the base for relative and scheme-relative URLs', async (t) => {
  const r = await preview(
    '<meta property="og:image" content="//cdn.example/p.png"><meta property="og:url" content="?page=2">',
    { pageUrl: 'http://plain.example/dir/' },
  );
  t.equal(r.image?.url, 'http://cdn.example/p.png', 'scheme-relative URL takes the page scheme');
  t.equal(r.url, 'http://plain.example/dir/?page=2');
});
