import { Errors } from '../../errors.js';
import { json, type Result } from '../../http/types.js';
import {
  archivingEnabled,
  deleteExport,
  exportMetadata,
  exportPartBody,
  exportView,
  startExport,
} from '../../archive/server-exports.js';
import { addPart, closeImportRequest, startImport, type ImportPartRequest } from '../../archive/server-imports.js';
import { serverNameParam } from '../params.js';
import type { Ctx } from '../services.js';
import { actorOf, assertServerInScope, userIdParam } from './actor.js';

// MMR's GDPR archive admin API. Starting an export: a repo admin, or (archiving.selfService)
// the user themselves / a local admin of the server. The view, metadata, part and delete
// endpoints take no token: the export ID is the secret (MMR). Imports: repo admins only.
// archiving.enabled: false answers 403 to starting an export or an import; exports already
// made stay readable and deletable, so turning the feature off strands nothing.

const datastoreIds = (ctx: Ctx) => ctx.domain.datastores.map((d) => d.id);
/** MMR's `?s3_urls=`: on unless `false`. */
const s3Urls = (ctx: Ctx) => ctx.req.query.get('s3_urls') !== 'false';

export async function exportUserHandler(ctx: Ctx): Promise<Result> {
  const a = ctx.domain.archiving;
  archivingEnabled(a, 'export media');
  const { userId, server } = userIdParam(ctx.params.userId);
  const user = ctx.user;
  if (!user) throw Errors.missingToken();
  if (!user.isRepoAdmin && !(a.selfService && user.userId === userId))
    throw Errors.forbidden(
      a.selfService
        ? 'Only repository admins and the user themselves may export a user\u2019s media'
        : 'Only repository admins may export a user\u2019s media (archiving.selfService is off)',
    );
  const out = await startExport(ctx.svc.admin, {
    entity: { user: userId, origin: server },
    entityId: userId,
    host: ctx.serverName,
    archiving: a,
    datastoreIds: datastoreIds(ctx),
    s3Urls: s3Urls(ctx),
  });
  ctx.log.info('export requested', { by: user.userId, entity: userId, taskId: out.task_id });
  return json(out);
}

export async function exportServerHandler(ctx: Ctx): Promise<Result> {
  const a = ctx.domain.archiving;
  archivingEnabled(a, 'export media');
  const serverName = serverNameParam(ctx.params.serverName);
  const actor = await actorOf(ctx, { localAdmins: a.selfService, what: "export a server's media" });
  assertServerInScope(actor, serverName);
  const out = await startExport(ctx.svc.admin, {
    entity: { server: serverName },
    entityId: serverName,
    host: ctx.serverName,
    archiving: a,
    datastoreIds: datastoreIds(ctx),
    s3Urls: s3Urls(ctx),
  });
  ctx.log.info('export requested', { by: actor.userId, entity: serverName, taskId: out.task_id });
  return json(out);
}

const NO_STORE = { 'Cache-Control': 'no-store' };

export async function exportViewHandler(ctx: Ctx): Promise<Result> {
  const html = await exportView(ctx.svc.admin, ctx.params.exportId ?? '');
  return {
    kind: 'page',
    status: 200,
    body: Buffer.from(html, 'utf8'),
    headers: { 'Content-Type': 'text/html; charset=utf-8', ...NO_STORE },
  };
}

export async function exportMetadataHandler(ctx: Ctx): Promise<Result> {
  return json(await exportMetadata(ctx.svc.admin, ctx.params.exportId ?? ''), 200, NO_STORE);
}

export async function exportPartHandler(ctx: Ctx): Promise<Result> {
  const raw = ctx.params.index ?? '';
  if (!/^[1-9][0-9]{0,8}$/.test(raw)) throw Errors.notFound('Export has no such part');
  const { part, media } = await exportPartBody(ctx.svc.admin, ctx.params.exportId ?? '', Number(raw));
  return {
    kind: 'media',
    status: 200,
    media,
    headers: {
      'Content-Type': 'application/gzip',
      // Our part names are plain tokens (export-part-N.tgz, export-manifest.tgz).
      'Content-Disposition': `attachment; filename="${part.fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
      ...NO_STORE,
    },
  };
}

export async function exportDeleteHandler(ctx: Ctx): Promise<Result> {
  await deleteExport(ctx.svc.admin, ctx.params.exportId ?? '');
  return json({});
}

/** 2 × targetBytesPerPart + uploads.maxBytes: a part may pass the target by one whole file. */
function importPart(ctx: Ctx): ImportPartRequest {
  const a = ctx.domain.archiving;
  return {
    host: ctx.serverName,
    body: ctx.req.body,
    maxPartBytes: 2 * a.targetBytesPerPart + Math.max(0, ctx.domain.uploads.maxBytes),
    datastoreIds: datastoreIds(ctx),
  };
}

const IMPORT_ID = /^[A-Za-z0-9_-]{16,128}$/;
function importIdParam(ctx: Ctx): string {
  const id = ctx.params.importId ?? '';
  if (!IMPORT_ID.test(id)) throw Errors.notFound('No open import with this ID');
  return id;
}

export async function importStartHandler(ctx: Ctx): Promise<Result> {
  archivingEnabled(ctx.domain.archiving, 'import archives');
  const actor = await actorOf(ctx, { localAdmins: false, what: 'import archives' });
  const localServers = ctx.svc.config().global.homeservers.map((h) => h.name);
  const out = await startImport(ctx.svc.admin, { ...importPart(ctx), localServers });
  ctx.log.info('archive import started', { by: actor.userId, taskId: out.task_id });
  return json(out);
}

export async function importPartHandler(ctx: Ctx): Promise<Result> {
  archivingEnabled(ctx.domain.archiving, 'import archives');
  await actorOf(ctx, { localAdmins: false, what: 'import archives' });
  await addPart(ctx.svc.admin, importIdParam(ctx), importPart(ctx));
  return json({});
}

export async function importCloseHandler(ctx: Ctx): Promise<Result> {
  archivingEnabled(ctx.domain.archiving, 'import archives');
  await actorOf(ctx, { localAdmins: false, what: 'import archives' });
  await closeImportRequest(ctx.svc.admin, importIdParam(ctx));
  return json({});
}
