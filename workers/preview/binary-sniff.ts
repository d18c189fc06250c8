// A fetched "page" that is really an image, an archive or random bytes must give an empty
// preview, not a description made of mojibake. Text never holds these control characters; any
// binary file has them within its first kilobyte (the MIME Sniffing Standard's "binary data
// bytes", checked here on the decoded text so that UTF-16 pages pass).
const BINARY_CHARS = /[\u0000-\u0008\u000b\u000e-\u001a\u001c-\u001f]/;
const SNIFF_CHARS = 1024;

export function looksBinary(text: string): boolean {
  return BINARY_CHARS.test(text.slice(0, SNIFF_CHARS));
}
