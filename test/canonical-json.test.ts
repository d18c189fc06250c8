import t from 'tap';
import { canonicalJson, compareCodepoints } from '../src/matrix/canonical-json.js';
import { decodeBase64, encodeUnpaddedBase64 } from '../src/matrix/base64.js';

// Canonical JSON and unpadded base64, against every example in the spec's appendices.

t.test('every Canonical JSON example in the spec appendix', async (t) => {
  const examples: Array<[string, string]> = [
    ['{}', '{}'],
    ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
    ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
    ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
    [
      JSON.stringify({
        auth: {
          success: true,
          mxid: '@john.doe:example.com',
          profile: {
            display_name: 'John Doe',
            three_pids: [
              { medium: 'email', address: 'john.doe@example.org' },
              { medium: 'msisdn', address: '123456789' },
            ],
          },
        },
      }),
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ],
    ['{"a": "日本語"}', '{"a":"日本語"}'],
    ['{"本": 2, "日": 1}', '{"日":1,"本":2}'],
    ['{"a": "\\u65E5"}', '{"a":"日"}'],
    ['{"a": null}', '{"a":null}'],
    ['{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'],
  ];
  for (const [input, want] of examples) t.equal(canonicalJson(JSON.parse(input)), want, input);
});

t.test('string escapes follow the spec grammar', async (t) => {
  t.equal(canonicalJson('"\\\b\f\n\r\t'), '"\\"\\\\\\b\\f\\n\\r\\t"', 'short escapes');
  t.equal(
    canonicalJson('\u0000\u0001\u000b\u001f'),
    '"\\u0000\\u0001\\u000b\\u001f"',
    'other controls: lowercase \\u00XX',
  );
  t.equal(canonicalJson('\u007f/é😀'), '"\u007f/é😀"', 'DEL, slash and non-ASCII unescaped');
  t.throws(() => canonicalJson('\ud800'), TypeError, 'lone high surrogate');
  t.throws(() => canonicalJson({ ['\udc00']: 1 }), TypeError, 'lone low surrogate in a key');
});

t.test('keys sort by codepoint, not UTF-16 unit or locale', async (t) => {
  t.equal(canonicalJson({ 日: 4, é: 3, B: 2, a: 1 }), '{"B":2,"a":1,"é":3,"日":4}');
  // U+FF61 sorts before U+1F600 by codepoint, after it by UTF-16 code unit (0xD83D).
  t.equal(canonicalJson({ '😀': 1, '｡': 2 }), '{"｡":2,"😀":1}');
  t.ok(compareCodepoints('a', 'ab') < 0, 'a prefix sorts first');
  t.ok(compareCodepoints('\u{1F601}', '\u{1F600}') > 0, 'pairs compare by full codepoint');
});

t.test('numbers: integers in the safe range only', async (t) => {
  t.equal(canonicalJson([9007199254740991, -9007199254740991, 0]), '[9007199254740991,-9007199254740991,0]');
  for (const bad of [1.5, 9007199254740992, -9007199254740992, NaN, Infinity, -Infinity]) {
    t.throws(() => canonicalJson({ n: bad }), TypeError, String(bad));
  }
  t.throws(() => canonicalJson(10n), TypeError, 'bigint');
});

t.test('refuses what another implementation could encode differently', async (t) => {
  t.throws(() => canonicalJson(new Date(0)), TypeError, 'Date');
  t.throws(() => canonicalJson({ m: new Map() }), TypeError, 'Map');
  t.throws(() => canonicalJson(Buffer.from('x')), TypeError, 'Buffer');
  t.throws(() => canonicalJson([undefined]), TypeError, 'undefined in an array');
  t.throws(() => canonicalJson(undefined), TypeError, 'undefined at the top');
  t.throws(() => canonicalJson({ f: () => 1 }), TypeError, 'function');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.throws(() => canonicalJson(cyclic), TypeError, 'cycle');
  const shared = { x: 1 };
  t.equal(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]', 'a shared (acyclic) object is fine');
  t.equal(canonicalJson({ a: 1, b: undefined }), '{"a":1}', 'undefined properties are omitted');
  t.equal(canonicalJson(Object.assign(Object.create(null), { z: [true, false, null] })), '{"z":[true,false,null]}');
});

t.test('unpadded base64: the spec examples, and lenient decoding', async (t) => {
  const ex: Array<[string, string]> = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, enc] of ex) {
    t.equal(encodeUnpaddedBase64(Buffer.from(plain)), enc, `encode ${plain}`);
    t.equal(decodeBase64(enc).toString(), plain, `decode ${enc}`);
  }
  t.equal(decodeBase64('Zm8=').toString(), 'fo', 'padded input');
  t.same([...decodeBase64('-_8')], [0xfb, 0xff], 'URL-safe input');
  t.same([...decodeBase64('+/8')], [0xfb, 0xff], 'standard input');
  t.equal(encodeUnpaddedBase64(new Uint8Array([0xfb, 0xff])), '+/8', 'encodes the standard alphabet');
  for (const bad of ['Zm9v!', 'Zm 9v', 'Z', 'Zm8==', 'Zg='])
    t.throws(() => decodeBase64(bad), Error, JSON.stringify(bad));
});
