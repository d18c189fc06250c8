// Shared by the thumbnail suites: upload, request and check thumbnails over real HTTP.
import type { Test } from 'tap';
import { createHash } from 'node:crypto';
import { ALICE, SERVER_NAME, type TestRepo } from './repo.js';
import { dims } from './images.js';

export type Path = 'client' | 'r0' | 'v1' | 'v3';

export const DEFAULT_TYPES = [
  'image/jpeg',
  'image/jpg',
  'image/png',
  'image/apng',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/heif',
  'image/tiff',
  'image/bmp',
];
export const EXTRA_TYPES = ['image/svg+xml', 'video/mp4', 'video/webm', 'video/quicktime'];

export interface TasksRun {
  static: number;
  animated: number;
  blurhash: number;
}
/** services.thumbnails.tasksRun(), reached without depending on the Services type's shape. */
export function tasksRun(r: TestRepo): TasksRun {
  return (r.repo.services as unknown as { thumbnails: { tasksRun(): TasksRun } }).thumbnails.tasksRun();
}

export async function upload(
  r: TestRepo,
  body: Buffer,
  type?: string,
): Promise<{ id: string; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (type) headers['Content-Type'] = type;
  const res = await r.fetch('/_matrix/media/v3/upload', {
    method: 'POST',
    body: new Uint8Array(body),
    headers,
    token: ALICE,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`upload (${type}) answered ${res.status}: ${text}`);
  const json = JSON.parse(text) as Record<string, unknown>;
  return { id: String(json.content_uri).split('/').pop()!, json };
}

export function thumbPath(path: Path, id: string, query: string): string {
  const base = path === 'client' ? '/_matrix/client/v1/media/thumbnail' : `/_matrix/media/${path}/thumbnail`;
  return `${base}/${SERVER_NAME}/${id}${query ? `?${query}` : ''}`;
}

export interface Got {
  res: Response;
  body: Buffer;
}

export async function thumb(
  r: TestRepo,
  id: string,
  query: string,
  opts: { path?: Path; token?: string | null } = {},
): Promise<Got> {
  const path = opts.path ?? 'client';
  const token = opts.token === undefined ? (path === 'client' ? ALICE : null) : opts.token;
  const res = await r.fetch(thumbPath(path, id, query), { token, signal: AbortSignal.timeout(20_000) });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

export const EXT: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };

export interface Want {
  type: string;
  width: number;
  height: number;
  pages?: number;
}

/** Asserts a 200 thumbnail of the given type, disposition, size and (default 1) page count. */
export async function expectThumb(t: Test, got: Got, want: Want, what: string): Promise<void> {
  const { res, body } = got;
  if (res.status !== 200) {
    t.fail(`${what}: expected 200, got ${res.status} ${body.toString('utf8', 0, 300)}`);
    return;
  }
  t.equal(res.headers.get('content-type'), want.type, `${what}: content-type`);
  t.equal(
    res.headers.get('content-disposition'),
    `inline; filename=thumbnail.${EXT[want.type]}`,
    `${what}: content-disposition`,
  );
  let d;
  try {
    d = await dims(body);
  } catch (e) {
    t.fail(`${what}: body is not an image sharp can read (${String(e)})`);
    return;
  }
  t.same(
    { width: d.width, height: d.height, pages: d.pages },
    { width: want.width, height: want.height, pages: want.pages ?? 1 },
    `${what}: ${want.width}x${want.height}, ${want.pages ?? 1} page(s)`,
  );
}

export async function expectError(
  t: Test,
  got: Got,
  status: number,
  errcode: string,
  error: string | undefined,
  what: string,
): Promise<void> {
  t.equal(got.res.status, status, `${what}: status`);
  let json: { errcode?: string; error?: string } = {};
  try {
    json = JSON.parse(got.body.toString('utf8'));
  } catch {
    t.fail(`${what}: body is not JSON: ${got.body.toString('utf8', 0, 200)}`);
    return;
  }
  t.equal(json.errcode, errcode, `${what}: errcode`);
  if (error !== undefined) t.equal(json.error, error, `${what}: error message`);
}

export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
