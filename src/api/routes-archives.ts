import type { Route } from './services.js';
import {
  exportDeleteHandler,
  exportMetadataHandler,
  exportPartHandler,
  exportServerHandler,
  exportUserHandler,
  exportViewHandler,
  importCloseHandler,
  importPartHandler,
  importStartHandler,
} from './admin/archives.js';

/** MMR's admin API prefixes. */
const ADMIN = '/_matrix/media/{unstable,unstable/io.t2bot.media}/admin';

// GDPR exports and imports (MMR's admin API). Starting rows authenticate a real user and the
// handler decides the role; the export's own rows take no token (the export ID is the secret).
export const ARCHIVE_ROUTES: Route[] = [
  {
    name: 'admin_export_user',
    methods: ['POST'],
    paths: [`${ADMIN}/user/:userId/export`],
    auth: 'user',
    body: 'small',
    handler: exportUserHandler,
  },
  {
    name: 'admin_export_server',
    methods: ['POST'],
    paths: [`${ADMIN}/server/:serverName/export`],
    auth: 'user',
    body: 'small',
    handler: exportServerHandler,
  },
  {
    name: 'admin_export_view',
    methods: ['GET'],
    paths: [`${ADMIN}/export/:exportId/view`],
    auth: 'none',
    handler: exportViewHandler,
  },
  {
    name: 'admin_export_metadata',
    methods: ['GET'],
    paths: [`${ADMIN}/export/:exportId/metadata`],
    auth: 'none',
    handler: exportMetadataHandler,
  },
  {
    name: 'admin_export_part',
    methods: ['GET'],
    paths: [`${ADMIN}/export/:exportId/part/:index`],
    auth: 'none',
    handler: exportPartHandler,
  },
  {
    name: 'admin_export_delete',
    methods: ['DELETE'],
    paths: [`${ADMIN}/export/:exportId`],
    auth: 'none',
    body: 'small',
    handler: exportDeleteHandler,
  },
  {
    name: 'admin_import_start',
    methods: ['POST'],
    paths: [`${ADMIN}/import`],
    auth: 'user',
    body: 'stream',
    handler: importStartHandler,
  },
  {
    name: 'admin_import_part',
    methods: ['POST'],
    paths: [`${ADMIN}/import/:importId/part`],
    auth: 'user',
    body: 'stream',
    handler: importPartHandler,
  },
  {
    name: 'admin_import_close',
    methods: ['POST'],
    paths: [`${ADMIN}/import/:importId/close`],
    auth: 'user',
    body: 'small',
    handler: importCloseHandler,
  },
];
