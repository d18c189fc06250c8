import t from 'tap';
import { decodeBase64 } from '../src/matrix/base64.js';
import { generateSigningKey, signingKeyFromSeed } from '../src/matrix/signing-keys.js';
import { formatXMatrix, parseXMatrix, signRequest, verifyRequestSignature } from '../src/matrix/x-matrix.js';

// The X-Matrix Authorization header: parsing as the spec describes it, and request signatures.

const key = signingKeyFromSeed(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'), 'ed25519:1');
const SPEC_HEADER =
  'X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."';
const SPEC_AUTH = {
  origin: 'origin.hs.example.com',
  destination: 'destination.hs.example.com',
  key: 'ed25519:key1',
  sig: 'ABCDEF...',
};

t.test('parses the spec example and its variations', async (t) => {
  t.same(parseXMatrix(SPEC_HEADER), SPEC_AUTH, 'spec example');
  t.same(
    parseXMatrix(
      'x-matrix   sig="ABCDEF...",KEY="ed25519:key1",destination="destination.hs.example.com",Origin="origin.hs.example.com"',
    ),
    SPEC_AUTH,
    'lower-case scheme, extra spaces, any order, case-insensitive names',
  );
  t.same(
    parseXMatrix(
      'X-Matrix origin=origin.hs.example.com,destination=destination.hs.example.com,key=ed25519:key1,sig=ABCDEF...',
    ),
    SPEC_AUTH,
    'unquoted values, colons allowed',
  );
  t.same(
    parseXMatrix(
      'X-Matrix origin = "origin.hs.example.com" , destination= "destination.hs.example.com",key ="ed25519:key1" ,  sig="ABCDEF..."',
    ),
    SPEC_AUTH,
    'spaces around = and ,',
  );
  t.same(
    parseXMatrix('X-Matrix origin="a\\"b\\\\c",key="k\\1",sig="s"'),
    { origin: 'a"b\\c', destination: null, key: 'k1', sig: 's' },
    'backslash escapes; destination optional',
  );
  t.same(
    parseXMatrix('X-Matrix origin=a,,key=k,sig=s,foo="bar",'),
    { origin: 'a', destination: null, key: 'k', sig: 's' },
    'empty list elements and unknown parameters ignored',
  );
  t.equal(parseXMatrix('X-Matrix origin=a,key=k,sig=abc+/de').sig, 'abc+/de', 'base64 characters in a bare value');
});

t.test('malformed headers throw', async (t) => {
  const bad = [
    'X-Matrix origin="a",key="k"', // no sig
    'X-Matrix key="k",sig="s"', // no origin
    'X-Matrix origin="a",sig="s"', // no key
    'X-Matrix origin="",key="k",sig="s"', // empty origin
    'Bearer abc', // wrong scheme
    'X-Matrixorigin="a",key="k",sig="s"', // no space after the scheme
    'garbage',
    '',
    'X-Matrix origin="a,key="k",sig="s"', // unterminated quote
    'X-Matrix origin="a" key="k",sig="s"', // missing comma
    'X-Matrix origin,key="k",sig="s"', // name without value
    'X-Matrix origin=,key="k",sig="s"', // empty bare value
    'X-Matrix origin="a",origin="b",key="k",sig="s"', // duplicate
    'X-Matrix "origin"="a",key="k",sig="s"', // quoted name
    'X-Matrix origin="a",key="k",sig="s\\', // dangling backslash
  ];
  for (const h of bad) t.throws(() => parseXMatrix(h), { message: /^X-Matrix: / }, JSON.stringify(h));
});

t.test('formatXMatrix round-trips, escaping what needs it', async (t) => {
  t.equal(formatXMatrix(SPEC_AUTH), SPEC_HEADER, 'the spec layout exactly');
  const odd = { origin: 'we"ird\\', destination: null, key: 'ed25519:1', sig: 'x' };
  t.same(parseXMatrix(formatXMatrix(odd)), odd);
  t.notMatch(formatXMatrix(odd), /destination/, 'no destination parameter when null');
});

t.test('signRequest / verifyRequestSignature', async (t) => {
  const req = {
    method: 'GET',
    uri: '/_matrix/federation/v1/media/download/abc?x=1',
    origin: 'origin.example',
    destination: 'media.example',
  };
  const header = signRequest(req, key);
  const auth = parseXMatrix(header);
  t.same({ ...auth, sig: '' }, { origin: 'origin.example', destination: 'media.example', key: 'ed25519:1', sig: '' });
  t.ok(verifyRequestSignature(req, auth, key.publicKeyBase64), 'round trip');
  t.notOk(
    verifyRequestSignature({ ...req, destination: 'other.example' }, auth, key.publicKeyBase64),
    'wrong destination',
  );
  t.notOk(
    verifyRequestSignature({ ...req, uri: '/_matrix/federation/v1/media/download/abd?x=1' }, auth, key.publicKeyBase64),
    'wrong uri',
  );
  t.notOk(verifyRequestSignature({ ...req, method: 'POST' }, auth, key.publicKeyBase64), 'wrong method');
  t.notOk(verifyRequestSignature({ ...req, content: {} }, auth, key.publicKeyBase64), 'content added');
  t.notOk(verifyRequestSignature(req, { ...auth, origin: 'evil.example' }, key.publicKeyBase64), 'wrong origin');
  t.notOk(verifyRequestSignature(req, auth, generateSigningKey().publicKeyBase64), 'wrong key');
  t.notOk(verifyRequestSignature(req, { ...auth, sig: 'AAAA' }, key.publicKeyBase64), 'bad signature');
  t.notOk(
    verifyRequestSignature(req, { ...auth, destination: 'other.example' }, key.publicKeyBase64),
    'header names another destination',
  );

  const put = {
    method: 'PUT',
    uri: '/_matrix/federation/v1/send/1',
    origin: 'origin.example',
    destination: 'media.example',
    content: { pdus: [], n: 1 },
  };
  const putAuth = parseXMatrix(signRequest(put, key));
  t.ok(verifyRequestSignature(put, putAuth, key.publicKeyBase64), 'with content');
  t.ok(
    verifyRequestSignature({ ...put, content: { n: 1, pdus: [] } }, putAuth, key.publicKeyBase64),
    'key order of content does not matter',
  );
  t.notOk(
    verifyRequestSignature({ ...put, content: { pdus: [], n: 2 } }, putAuth, key.publicKeyBase64),
    'wrong content',
  );
  t.notOk(verifyRequestSignature({ ...put, content: undefined }, putAuth, key.publicKeyBase64), 'content dropped');
});

t.test('a header without destination (pre-v1.3 sender) still verifies against our name', async (t) => {
  const req = { method: 'GET', uri: '/x', origin: 'o.example', destination: 'media.example' };
  const auth = { ...parseXMatrix(signRequest(req, key)), destination: null };
  t.ok(verifyRequestSignature(req, auth, key.publicKeyBase64));
  t.notOk(verifyRequestSignature({ ...req, destination: 'other.example' }, auth, key.publicKeyBase64));
});
