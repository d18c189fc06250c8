import type { Readable } from 'node:stream';
import { OutboundError } from '../net/safe-request.js';

// Reads the first `max` bytes of a response body and stops the transfer there: a page's
// OpenGraph tags are near its top, so a 200 MiB page still previews from its first 10 MiB, and
// an endless stream (an Icecast radio URL, CVE-2022-41952) ends at the cap or at the deadline.

export interface Prefix {
  /** Owns its whole ArrayBuffer (never a view into Node's shared pool), so it can be transferred. */
  bytes: Buffer;
  /** False when the cap or the deadline cut the body short. */
  complete: boolean;
}

export function readPrefix(body: Readable, max: number): Promise<Prefix> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const done = (complete: boolean): void => {
      if (settled) return;
      settled = true;
      const bytes = Buffer.from(new ArrayBuffer(Math.min(total, max)));
      let at = 0;
      for (const c of chunks) {
        const n = Math.min(c.length, bytes.length - at);
        c.copy(bytes, at, 0, n);
        at += n;
        if (at >= bytes.length) break;
      }
      resolve({ bytes, complete });
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      chunks.push(chunk);
      total += chunk.length;
      if (total >= max) {
        done(total === max && body.readableEnded);
        body.destroy();
      }
    });
    body.once('end', () => done(true));
    body.once('error', (e) => {
      // A page that trickles until the deadline previews from what arrived by then.
      if (e instanceof OutboundError && e.kind === 'timeout' && total > 0) return done(false);
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
  });
}
