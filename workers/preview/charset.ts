// Turns a page's bytes into text, choosing the encoding in the order browsers do (HTML Living
// Standard, "determining the character encoding"), reduced to what a preview needs:
// BOM, then the HTTP header, then a <meta> prescan, then UTF-8 if the bytes are valid UTF-8,
// else windows-1252. A label TextDecoder does not know falls through to the next rule.
import { isUtf8 } from 'node:buffer';
import { charsetParam, prescanMetaCharset } from './charset-label.js';
import { decodeWindows1252 } from './windows-1252.js';

export interface DecodedPage {
  /** The WHATWG name of the encoding used, e.g. 'shift_jis' or 'windows-1252'. */
  charset: string;
  text: string;
}

export function decodePage(bytes: Uint8Array, contentType: string | null): DecodedPage {
  const declared =
    bomEncoding(bytes) ?? knownDecoder(charsetParam(contentType)) ?? knownDecoder(prescanMetaCharset(bytes));
  if (declared) return { charset: declared.encoding, text: decodeWith(declared, bytes) };
  return decodeUndeclared(bytes);
}

function decodeWith(decoder: TextDecoder, bytes: Uint8Array): string {
  return decoder.encoding === 'windows-1252' ? decodeWindows1252(bytes) : decoder.decode(bytes);
}

/** A decoder for a byte order mark; TextDecoder then drops the mark itself. */
function bomEncoding(bytes: Uint8Array): TextDecoder | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return new TextDecoder('utf-8');
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be');
  return undefined;
}

function knownDecoder(label: string | undefined): TextDecoder | undefined {
  if (!label) return undefined;
  try {
    return new TextDecoder(label);
  } catch {
    return undefined; // an unknown label, or one Node cannot decode (e.g. x-user-defined)
  }
}

function decodeUndeclared(bytes: Uint8Array): DecodedPage {
  // The fetcher may have cut the body inside a multi-byte character: that must not make a UTF-8
  // page fail the check, so the cut character is left out. (isUtf8 is a validating scan, several
  // times faster than a fatal TextDecoder.)
  const complete = withoutCutCharacter(bytes);
  if (isUtf8(complete)) return { charset: 'utf-8', text: new TextDecoder('utf-8').decode(complete) };
  return { charset: 'windows-1252', text: decodeWindows1252(bytes) };
}

/** `bytes` without a UTF-8 sequence that its last bytes start but do not finish. */
function withoutCutCharacter(bytes: Uint8Array): Uint8Array {
  const end = bytes.length;
  for (let i = end - 1; i >= 0 && i >= end - 3; i--) {
    const byte = bytes[i]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead
    if (byte < 0xc0) return bytes; // ASCII: nothing is cut
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
    return end - i < length ? bytes.subarray(0, i) : bytes;
  }
  return bytes;
}
