import { createRequire } from 'node:module';

type Uws = typeof import('uWebSockets.js');

// The unofficial uWS package silently falls back to a slow pure-JS shim when its native
// binary does not load. A media server on the shim is a performance trap, so refuse.
export function loadUws(): Uws {
  const require = createRequire(import.meta.url);
  const uws = require('uWebSockets.js') as Uws;
  if (!String(uws.App).includes('[native code]') || process.env.UWS_USE_FALLBACK) {
    throw new Error(
      'uWebSockets.js native binary did not load (the JS fallback shim was used instead). ' +
        `This Node.js (${process.version}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}) ` +
        'needs a matching uws_*.node binary; reinstall dependencies with `npm ci` on this machine.',
    );
  }
  return uws;
}
