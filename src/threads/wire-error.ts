import { MatrixError, revivedMatrixError, type ErrorCode } from '../errors.js';

// An error as it crosses a message port between threads: what callers match on survives (pg's
// SQLSTATE and detail, a MatrixError's code, errcode, extra keys and headers such as
// Retry-After); the stack stays on the thread that threw.

export interface WireFailure {
  message: string;
  code?: string;
  detail?: string;
  matrix?: {
    code: ErrorCode;
    message: string;
    errcode: string;
    extra: Record<string, unknown>;
    headers: Record<string, string>;
  };
}

export function toWire(e: unknown): WireFailure {
  if (e instanceof MatrixError)
    return {
      message: e.message,
      matrix: { code: e.code, message: e.message, errcode: e.errcode, extra: e.extra, headers: e.headers },
    };
  const err = e as { message?: unknown; code?: unknown; detail?: unknown };
  return {
    message: typeof err?.message === 'string' ? err.message : String(e),
    ...(typeof err?.code === 'string' ? { code: err.code } : {}),
    ...(typeof err?.detail === 'string' ? { detail: err.detail } : {}),
  };
}

export function fromWire(w: WireFailure): Error {
  if (w.matrix)
    return revivedMatrixError(w.matrix.code, w.matrix.message, {
      extra: w.matrix.extra,
      headers: w.matrix.headers,
      passedErrcode: w.matrix.errcode,
    });
  return Object.assign(new Error(w.message), w.code ? { code: w.code } : {}, w.detail ? { detail: w.detail } : {});
}
