import type { HttpResponse } from 'uWebSockets.js';
import type { HttpRequest } from './types.js';
import type { ResponseState } from './respond.js';
import type { Logger } from '../logging/logger.js';

// The requests the server is still working on, so that a stop can wait for them (the drain)
// and name every one it has to cut off: an operator who sees a client complain about a
// broken download after a deploy can find it in the log.

interface Entry {
  res: HttpResponse;
  st: ResponseState;
  req: HttpRequest;
  startNs: bigint;
}

export class InFlightRequests {
  private readonly entries = new Set<Entry>();

  add(res: HttpResponse, st: ResponseState, req: HttpRequest, startNs: bigint): Entry {
    const e = { res, st, req, startNs };
    this.entries.add(e);
    return e;
  }

  delete(e: Entry): void {
    this.entries.delete(e);
  }

  get size(): number {
    return this.entries.size;
  }

  /** One warning per request that has not finished: called right before connections are closed. */
  logCutOff(log: Logger): void {
    const now = process.hrtime.bigint();
    for (const { res, st, req, startNs } of this.entries) {
      // A client that already left, or a response already handed to uWS in full, is not cut.
      if (st.aborted || st.done) continue;
      let bytesSent: number | undefined;
      try {
        // Body bytes handed to the socket so far (uWS's write offset for this response).
        bytesSent = res.getWriteOffset();
      } catch {
        bytesSent = undefined; // the response was discarded in between
      }
      log.warn('request cut off at shutdown', {
        requestId: req.requestId,
        method: req.method,
        path: req.path,
        status: st.status,
        bytesSent,
        ms: Number((now - startNs) / 1_000_000n),
      });
    }
  }
}
