import type { Route } from './services.js';
import { uploadHandler, uploadAsyncHandler } from './media/upload.js';
import { createHandler } from './media/create.js';
import { downloadHandler } from './media/download.js';
import { configHandler } from './media/config.js';
import { thumbnailHandler } from './media/thumbnail.js';
import { identiconHandler } from './media/identicon.js';
import { previewUrlHandler } from './media/preview-url.js';
import { federationDownloadHandler, federationThumbnailHandler } from './federation/media.js';
import { versionsHandler } from './client/versions.js';
import { logoutHandler } from './client/logout.js';
import { healthHandler, versionHandler } from './health.js';
import { listDatastoresHandler, sizeEstimateHandler, transferHandler } from './admin/datastores.js';
import { listTasksHandler, taskHandler } from './admin/tasks.js';
import { readyHandler } from './ready.js';
import { MODERATION_ROUTES } from './routes-moderation.js';
import { ADMIN_INFO_ROUTES } from './routes-admin-info.js';
import { SYNAPSE_ADMIN_ROUTES } from './routes-synapse.js';
import { QUOTA_ROUTES } from './routes-quota.js';
import { ARCHIVE_ROUTES } from './routes-archives.js';

const LEGACY = '/_matrix/media/{r0,v1,v3}';
const AUTHED = '/_matrix/client/v1/media';
/** MMR's admin API prefixes. */
const ADMIN = '/_matrix/media/{unstable,unstable/io.t2bot.media}/admin';

// The route table: every endpoint is one row (methods, paths, auth, body, handler).
// GET routes answer HEAD too (MSC4120 for downloads).
export const ROUTES: Route[] = [
  {
    name: 'upload',
    methods: ['POST'],
    paths: [`${LEGACY}/upload`],
    auth: 'user',
    body: 'stream',
    handler: uploadHandler,
  },
  {
    name: 'upload_async',
    methods: ['PUT'],
    paths: ['/_matrix/media/v3/upload/:serverName/:mediaId'],
    auth: 'user',
    body: 'stream',
    handler: uploadAsyncHandler,
  },
  {
    name: 'create',
    methods: ['POST'],
    paths: ['/_matrix/media/v1/create'],
    auth: 'user',
    body: 'small',
    handler: createHandler,
  },
  {
    name: 'download',
    methods: ['GET'],
    auth: 'none',
    handler: (c) => downloadHandler(c, false),
    paths: [`${LEGACY}/download/:serverName/:mediaId`, `${LEGACY}/download/:serverName/:mediaId/:fileName`],
  },
  {
    name: 'download_authenticated',
    methods: ['GET'],
    auth: 'guest',
    handler: (c) => downloadHandler(c, true),
    paths: [`${AUTHED}/download/:serverName/:mediaId`, `${AUTHED}/download/:serverName/:mediaId/:fileName`],
  },
  {
    name: 'thumbnail',
    methods: ['GET'],
    paths: [`${LEGACY}/thumbnail/:serverName/:mediaId`],
    auth: 'none',
    handler: (c) => thumbnailHandler(c, false),
  },
  {
    name: 'thumbnail_authenticated',
    methods: ['GET'],
    paths: [`${AUTHED}/thumbnail/:serverName/:mediaId`],
    auth: 'guest',
    handler: (c) => thumbnailHandler(c, true),
  },
  {
    name: 'identicon',
    methods: ['GET'],
    paths: ['/_matrix/media/r0/identicon/:seed'],
    auth: 'optional',
    handler: identiconHandler,
  },
  {
    name: 'federation_download',
    methods: ['GET'],
    paths: ['/_matrix/federation/v1/media/download/:mediaId'],
    auth: 'server',
    handler: federationDownloadHandler,
  },
  {
    name: 'federation_thumbnail',
    methods: ['GET'],
    paths: ['/_matrix/federation/v1/media/thumbnail/:mediaId'],
    auth: 'server',
    handler: federationThumbnailHandler,
  },
  {
    name: 'url_preview',
    methods: ['GET'],
    paths: ['/_matrix/media/{r0,v1,v3}/preview_url', `${AUTHED}/preview_url`],
    auth: 'user',
    handler: previewUrlHandler,
  },
  {
    name: 'config',
    methods: ['GET'],
    paths: ['/_matrix/media/{r0,v3}/config', `${AUTHED}/config`],
    auth: 'user',
    handler: configHandler,
  },
  { name: 'versions', methods: ['GET'], paths: ['/_matrix/client/versions'], auth: 'none', handler: versionsHandler },
  {
    name: 'logout',
    methods: ['POST'],
    paths: ['/_matrix/client/{r0,v3}/logout'],
    auth: 'guest',
    body: 'small',
    handler: (c) => logoutHandler(c, false),
  },
  {
    name: 'logout_all',
    methods: ['POST'],
    paths: ['/_matrix/client/{r0,v3}/logout/all'],
    auth: 'guest',
    body: 'small',
    handler: (c) => logoutHandler(c, true),
  },
  {
    name: 'admin_datastores',
    methods: ['GET'],
    paths: [`${ADMIN}/datastores`],
    auth: 'admin',
    handler: listDatastoresHandler,
  },
  {
    name: 'admin_size_estimate',
    methods: ['GET'],
    paths: [`${ADMIN}/datastores/:datastoreId/size_estimate`],
    auth: 'admin',
    handler: sizeEstimateHandler,
  },
  {
    name: 'admin_transfer',
    methods: ['POST'],
    paths: [`${ADMIN}/datastores/:sourceId/transfer_to/:targetId`],
    auth: 'admin',
    handler: transferHandler,
  },
  // Literal task paths before the :taskId one (the first matching row wins).
  {
    name: 'admin_tasks_all',
    methods: ['GET'],
    paths: [`${ADMIN}/tasks/all`],
    auth: 'admin',
    handler: (c) => listTasksHandler(c, false),
  },
  {
    name: 'admin_tasks_unfinished',
    methods: ['GET'],
    paths: [`${ADMIN}/tasks/unfinished`],
    auth: 'admin',
    handler: (c) => listTasksHandler(c, true),
  },
  { name: 'admin_task', methods: ['GET'], paths: [`${ADMIN}/tasks/:taskId`], auth: 'admin', handler: taskHandler },
  ...ADMIN_INFO_ROUTES,
  ...MODERATION_ROUTES,
  ...SYNAPSE_ADMIN_ROUTES,
  ...QUOTA_ROUTES,
  ...ARCHIVE_ROUTES,
  {
    name: 'version',
    methods: ['GET'],
    paths: ['/_matrix/media/version'],
    auth: 'none',
    hostless: true,
    handler: versionHandler,
  },
  { name: 'healthz', methods: ['GET'], paths: ['/healthz'], auth: 'none', hostless: true, handler: healthHandler },
  { name: 'readyz', methods: ['GET'], paths: ['/readyz'], auth: 'none', hostless: true, handler: readyHandler },
];
