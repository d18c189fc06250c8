import { createPrivateKey, createPublicKey, randomBytes, randomInt, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalJson } from './canonical-json.js';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';

// Ed25519 signing keys (spec: "Signing JSON") and the three key file formats in use:
//  - Synapse: one key per line, `ed25519 <version> <unpadded base64 seed>`;
//  - Dendrite: PEM blocks `MATRIX PRIVATE KEY` with a `Key-ID: ed25519:<version>` header and the
//    32-byte seed as the body;
//  - MMR: the same PEM layout with block type `MMR PRIVATE KEY` and an extra `Version: 1` header.
// Keys are built with node:crypto from the 32-byte seed, the form every format stores.

export interface SigningKey {
  keyId: string;
  seed: Buffer;
  publicKeyBase64: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export type KeyFileFormat = 'mmr' | 'synapse' | 'dendrite';
export const KEY_FILE_FORMATS: readonly KeyFileFormat[] = ['mmr', 'synapse', 'dendrite'];

// DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key (RFC 8410): the raw
// 32 bytes follow them directly.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
// Key versions go into X-Matrix headers and JSON keys unquoted by some servers: keep them to
// the spec's [a-zA-Z0-9_] plus the few separators seen in the wild.
const KEY_ID = /^ed25519:[A-Za-z0-9_.-]{1,64}$/;
const VERSION_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function signingKeyFromSeed(seed: Buffer, keyId: string): SigningKey {
  if (seed.length !== 32) throw new Error(`signing key ${keyId}: seed is ${seed.length} bytes, not 32`);
  if (!KEY_ID.test(keyId)) throw new Error(`signing key: bad key ID ${JSON.stringify(keyId)} (want ed25519:<version>)`);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return { keyId, seed: Buffer.from(seed), publicKeyBase64: encodeUnpaddedBase64(raw), privateKey, publicKey };
}

/** A fresh key; the default version is Synapse's style, `a_` and 4 random characters. */
export function generateSigningKey(version?: string): SigningKey {
  const v =
    version ?? `a_${Array.from({ length: 4 }, () => VERSION_ALPHABET[randomInt(VERSION_ALPHABET.length)]).join('')}`;
  return signingKeyFromSeed(randomBytes(32), `ed25519:${v}`);
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const PEM_TYPES: Record<string, 'mmr' | 'dendrite'> = { 'MMR PRIVATE KEY': 'mmr', 'MATRIX PRIVATE KEY': 'dendrite' };

export function parseSigningKeys(text: string): SigningKey[] {
  if (text.includes('-----BEGIN ')) return parsePem(text);
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new Error('signing key file: no keys found (file is empty)');
  return lines.map((line, i) => {
    const parts = line.split(/\s+/);
    if (parts.length !== 3 || parts[0] !== 'ed25519') {
      throw new Error(
        `signing key file: line ${i + 1} is not a Synapse key line "ed25519 <version> <base64 seed>" nor a PEM block`,
      );
    }
    return keyFrom(parts[2]!, `ed25519:${parts[1]}`, `line ${i + 1}`);
  });
}

function parsePem(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const kind = PEM_TYPES[m[1]!];
    if (!kind) continue; // other PEM blocks (certificates, comments) are not ours to judge
    const where = `${m[1]} block ${keys.length + 1}`;
    const [head, body] = splitHeaders(m[2]!);
    if (kind === 'mmr' && head.get('version') !== '1') {
      throw new Error(
        `signing key file: ${where}: unsupported MMR key format version ${head.get('version') ?? '(none)'}`,
      );
    }
    const keyId = head.get('key-id');
    if (!keyId) throw new Error(`signing key file: ${where}: missing Key-ID header`);
    if (!keyId.startsWith('ed25519:'))
      throw new Error(`signing key file: ${where}: key ID ${keyId} is not an ed25519 key`);
    keys.push(keyFrom(body.replace(/\s+/g, ''), keyId, where));
  }
  if (keys.length === 0) throw new Error('signing key file: no MMR PRIVATE KEY or MATRIX PRIVATE KEY block found');
  return keys;
}

/** RFC 1421-style headers (`Name: value` lines up to a blank line), then the base64 body. */
function splitHeaders(block: string): [Map<string, string>, string] {
  const lines = block.split(/\r?\n/);
  const head = new Map<string, string>();
  if (!lines[0]?.includes(':')) return [head, block];
  let i = 0;
  for (; i < lines.length && lines[i]!.trim() !== ''; i++) {
    const c = lines[i]!.indexOf(':');
    if (c > 0) head.set(lines[i]!.slice(0, c).trim().toLowerCase(), lines[i]!.slice(c + 1).trim());
  }
  return [head, lines.slice(i).join('\n')];
}

function keyFrom(b64: string, keyId: string, where: string): SigningKey {
  let seed: Buffer;
  try {
    seed = decodeBase64(b64);
  } catch (e) {
    throw new Error(`signing key file: ${where}: key data is not base64 (${(e as Error).message})`);
  }
  if (seed.length !== 32)
    throw new Error(`signing key file: ${where}: key data is ${seed.length} bytes, not a 32-byte ed25519 seed`);
  if (!KEY_ID.test(keyId)) throw new Error(`signing key file: ${where}: bad key ID ${JSON.stringify(keyId)}`);
  return signingKeyFromSeed(seed, keyId);
}

export function loadSigningKey(path: string): SigningKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`signing key file ${path}: ${(e as Error).message}`);
  }
  try {
    return parseSigningKeys(text)[0]!;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

export function formatSigningKeys(keys: SigningKey[], format: KeyFileFormat): string {
  if (format === 'synapse') {
    return keys.map((k) => `ed25519 ${k.keyId.slice('ed25519:'.length)} ${encodeUnpaddedBase64(k.seed)}\n`).join('');
  }
  // PEM as Go's encoding/pem writes it (what MMR and Dendrite read back): headers sorted,
  // a blank line, padded base64 in 64-character lines.
  const type = format === 'mmr' ? 'MMR PRIVATE KEY' : 'MATRIX PRIVATE KEY';
  return keys
    .map((k) => {
      const headers = [`Key-ID: ${k.keyId}`, ...(format === 'mmr' ? ['Version: 1'] : [])];
      const body = k.seed
        .toString('base64')
        .match(/.{1,64}/g)!
        .join('\n');
      return `-----BEGIN ${type}-----\n${headers.join('\n')}\n\n${body}\n-----END ${type}-----\n`;
    })
    .join('');
}

type Signatures = Record<string, Record<string, string>>;

/** Spec "Signing JSON": sign everything but `signatures` and `unsigned`; keep other signatures. */
export function signJson<T extends object>(
  obj: T,
  serverName: string,
  key: SigningKey,
): T & { signatures: Signatures } {
  const { signatures, unsigned, ...rest } = obj as Record<string, unknown>;
  const sig = encodeUnpaddedBase64(sign(null, Buffer.from(canonicalJson(rest), 'utf8'), key.privateKey));
  // No prototype: a server name such as "__proto__" must stay a plain key.
  const merged: Signatures = Object.create(null);
  if (signatures && typeof signatures === 'object') {
    for (const [name, sigs] of Object.entries(signatures as Signatures)) merged[name] = { ...sigs };
  }
  merged[serverName] = { ...merged[serverName], [key.keyId]: sig };
  return { ...(obj as object), signatures: merged } as T & { signatures: Signatures };
}

/** Checks one signature (spec "Checking for a Signature"); any malformed input is just false. */
export function verifyJsonSignature(obj: object, serverName: string, keyId: string, publicKeyBase64: string): boolean {
  try {
    if (!keyId.startsWith('ed25519:')) return false;
    const { signatures, unsigned, ...rest } = obj as Record<string, unknown>;
    const sig = (signatures as Signatures | undefined)?.[serverName]?.[keyId];
    if (typeof sig !== 'string') return false;
    const sigBytes = decodeBase64(sig);
    const pub = decodeBase64(publicKeyBase64);
    if (sigBytes.length !== 64 || pub.length !== 32) return false;
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
    return verify(null, Buffer.from(canonicalJson(rest), 'utf8'), publicKey, sigBytes);
  } catch {
    return false;
  }
}
