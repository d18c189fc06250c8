import { Errors } from '../errors.js';
import { isValidMediaId, isValidServerName } from '../matrix/ids.js';

// Edge validation with exact messages: what was expected and what arrived.

export function serverNameParam(v: string | undefined): string {
  if (!v || !isValidServerName(v))
    throw Errors.invalidParam(`serverName: expected a Matrix server name, got '${truncate(v ?? '')}'`);
  return v;
}

export function mediaIdParam(v: string | undefined): string {
  if (!v || !isValidMediaId(v))
    throw Errors.invalidParam(`mediaId: expected 1-255 characters of [A-Za-z0-9_-], got '${truncate(v ?? '')}'`);
  return v;
}

/** `?filename=`: empty means absent (matrix-bot-sdk sends `filename=`). NUL cannot be stored. */
export function filenameParam(v: string | null): string | null {
  if (v === null || v === '') return null;
  if (v.includes('\0')) throw Errors.invalidParam('filename: must not contain NUL characters');
  if (v.length > 1024) throw Errors.invalidParam(`filename: expected at most 1024 characters, got ${v.length}`);
  return v;
}

export function contentTypeHeader(v: string | undefined): string | null {
  if (v === undefined || v.trim() === '') return null;
  if (v.length > 255) throw Errors.invalidParam(`Content-Type: expected at most 255 characters, got ${v.length}`);
  return v;
}

function truncate(s: string): string {
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 64 ? clean.slice(0, 64) + '…' : clean;
}

/** A required positive integer query parameter (thumbnail width and height). */
export function positiveIntParam(
  name: string,
  v: string | null,
  opts: { required: boolean; fallback?: number } = { required: true },
): number {
  if (v === null || v === '') {
    if (!opts.required && opts.fallback !== undefined) return opts.fallback;
    throw Errors.missingParam(`${name}: required`);
  }
  if (!/^\d{1,9}$/.test(v) || Number(v) < 1)
    throw Errors.invalidParam(`${name}: expected a positive integer, got '${truncate(v)}'`);
  return Number(v);
}

/** A boolean query parameter; null when absent. */
export function booleanParam(name: string, v: string | null): boolean | null {
  if (v === null || v === '') return null;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw Errors.invalidParam(`${name}: expected 'true' or 'false', got '${truncate(v)}'`);
}

export function methodParam(v: string | null): 'crop' | 'scale' {
  if (v === null || v === '') return 'scale';
  if (v === 'crop' || v === 'scale') return v;
  throw Errors.invalidParam(`method: expected 'crop' or 'scale', got '${truncate(v)}'`);
}

/** timeout_ms: default 20 s, capped at 60 s so a client cannot park requests forever. */
export function timeoutMsParam(v: string | null): number {
  if (v === null || v === '') return 20_000;
  if (!/^\d+$/.test(v)) throw Errors.invalidParam(`timeout_ms: expected a non-negative integer, got '${v}'`);
  return Math.min(Number(v), 60_000);
}
