// An s3 datastore's opts in the forms MMR accepts, rewritten to the one form the checks in
// validate.ts expect. MMR reads opts as a map of strings (ssl: "true", prefixLength: "3") and
// parses them with Go's strconv; an endpoint is host[:port] there, but operators copy URLs from
// their provider's docs, so an http:// or https:// endpoint is taken too, its scheme deciding ssl.
// Anything not recognised is left as given for the checks to report.

// strconv.ParseBool's spellings.
const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const BOOL_KEYS = ['ssl', 'redirectWhenCached', 'multipartUploads'];

export function mmrS3Opts(given: Record<string, unknown>, path: string, warnings: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...given };
  for (const k of BOOL_KEYS) {
    const v = out[k];
    if (v === '')
      delete out[k]; // MMR: an empty value is the default
    else if (typeof v === 'string' && GO_TRUE.has(v)) out[k] = true;
    else if (typeof v === 'string' && GO_FALSE.has(v)) out[k] = false;
  }
  const prefix = out.prefixLength;
  if (prefix === '') delete out.prefixLength;
  else if (typeof prefix === 'string' && /^-?\d+$/.test(prefix)) out.prefixLength = Number(prefix);
  // MMR clamps a negative prefix length to none.
  if (typeof out.prefixLength === 'number' && Number.isInteger(out.prefixLength) && out.prefixLength < 0)
    out.prefixLength = 0;

  const endpoint = out.endpoint;
  const m = typeof endpoint === 'string' ? /^(https?):\/\/([^/?#@]+)\/?$/i.exec(endpoint.trim()) : null;
  if (m) {
    const ssl = m[1]!.toLowerCase() === 'https';
    if (typeof out.ssl === 'boolean' && out.ssl !== ssl) {
      warnings.push(
        `${path}.ssl: ${out.ssl} disagrees with the endpoint's ${m[1]!.toLowerCase()}:// scheme; the scheme wins`,
      );
    }
    out.endpoint = m[2]!;
    out.ssl = ssl;
  }
  return out;
}
