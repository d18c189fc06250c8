import type { Route } from './services.js';
import {
  attributesHandler,
  quarantineMediaHandler,
  quarantineRoomHandler,
  quarantineServerHandler,
  quarantineUserHandler,
  unquarantineMediaHandler,
} from './admin/quarantine.js';
import {
  purgeOldHandler,
  purgeOneHandler,
  purgeQuarantinedHandler,
  purgeRemoteHandler,
  purgeRoomHandler,
  purgeServerHandler,
  purgeUserHandler,
} from './admin/purge.js';
import { auditHandler } from './admin/audit.js';

/** MMR's admin API prefixes. */
const ADMIN = '/_matrix/media/{unstable,unstable/io.t2bot.media}/admin';
/** MMR's Synapse-compatible aliases under the client API. */
const CLIENT_ADMIN = '/_matrix/client/{r0,v3,unstable,unstable/io.t2bot.media}/admin';

// Quarantine, purge, attributes and the audit trail (MMR's admin API). Every row authenticates
// a real user ('user'); the handler's actorOf decides repo admin, local admin or neither, so a
// refusal is always a Matrix 403. Literal paths come before the `:serverName/:mediaId` ones.
export const MODERATION_ROUTES: Route[] = [
  {
    name: 'admin_quarantine_room',
    methods: ['POST'],
    paths: [`${ADMIN}/quarantine/room/:roomId`, `${CLIENT_ADMIN}/quarantine_media/:roomId`],
    auth: 'user',
    body: 'small',
    handler: quarantineRoomHandler,
  },
  {
    name: 'admin_quarantine_user',
    methods: ['POST'],
    paths: [`${ADMIN}/quarantine/user/:userId`],
    auth: 'user',
    body: 'small',
    handler: quarantineUserHandler,
  },
  {
    name: 'admin_quarantine_server',
    methods: ['POST'],
    paths: [`${ADMIN}/quarantine/server/:serverName`],
    auth: 'user',
    body: 'small',
    handler: quarantineServerHandler,
  },
  {
    name: 'admin_quarantine_media',
    methods: ['POST'],
    paths: [`${ADMIN}/quarantine/:serverName/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: quarantineMediaHandler,
  },
  {
    name: 'admin_unquarantine_media',
    methods: ['POST'],
    paths: [`${ADMIN}/unquarantine/:serverName/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: unquarantineMediaHandler,
  },
  {
    name: 'admin_purge_remote',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/remote`, `${ADMIN}/purge_remote`, `${CLIENT_ADMIN}/purge_media_cache`],
    auth: 'user',
    body: 'small',
    handler: purgeRemoteHandler,
  },
  {
    name: 'admin_purge_old',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/old`],
    auth: 'user',
    body: 'small',
    handler: purgeOldHandler,
  },
  {
    name: 'admin_purge_quarantined',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/quarantined`],
    auth: 'user',
    body: 'small',
    handler: purgeQuarantinedHandler,
  },
  {
    name: 'admin_purge_user',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/user/:userId`],
    auth: 'user',
    body: 'small',
    handler: purgeUserHandler,
  },
  {
    name: 'admin_purge_room',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/room/:roomId`],
    auth: 'user',
    body: 'small',
    handler: purgeRoomHandler,
  },
  {
    name: 'admin_purge_server',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/server/:serverName`],
    auth: 'user',
    body: 'small',
    handler: purgeServerHandler,
  },
  {
    name: 'admin_purge_media',
    methods: ['POST'],
    paths: [`${ADMIN}/purge/:serverName/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: purgeOneHandler,
  },
  {
    name: 'purge_own_media',
    methods: ['DELETE'],
    paths: ['/_matrix/media/{r0,v1,v3,unstable,unstable/io.t2bot.media}/download/:serverName/:mediaId'],
    auth: 'user',
    body: 'small',
    handler: purgeOneHandler,
  },
  {
    name: 'admin_media_attributes',
    methods: ['GET', 'POST'],
    paths: [`${ADMIN}/media/:serverName/:mediaId/attributes`, `${ADMIN}/media/:serverName/:mediaId/attributes/set`],
    auth: 'user',
    body: 'small',
    handler: attributesHandler,
  },
  { name: 'admin_audit', methods: ['GET'], paths: [`${ADMIN}/audit`], auth: 'user', handler: auditHandler },
];
