import type { Route } from './services.js';
import {
  synapseDeleteByDateHandler,
  synapseDeleteMediaHandler,
  synapseMediaInfoHandler,
  synapseProtectHandler,
  synapsePurgeMediaCacheHandler,
  synapseQuarantineHandler,
  synapseQuarantineRoomHandler,
  synapseQuarantineUserHandler,
  synapseUnquarantineHandler,
} from './admin/synapse.js';
import {
  synapseDeleteUserMediaHandler,
  synapseUserMediaHandler,
  synapseUserStatsHandler,
} from './admin/synapse-users.js';

/** Synapse's admin API prefix: tools that speak it (synapse-admin, synadm) reach us unchanged. */
const V1 = '/_synapse/admin/v1';

// Synapse's media admin API. Every row authenticates a real user ('user'); the handler decides
// repo admin, local admin of the Host, or neither (a Matrix 403). Literal segments come before
// `:serverName/:mediaId` (media/protect/X and media/X/delete have that row's shape too).
export const SYNAPSE_ADMIN_ROUTES: Route[] = [
  {
    name: 'synapse_quarantine_media',
    methods: ['POST'],
    paths: [`${V1}/media/quarantine/:serverName/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: synapseQuarantineHandler,
  },
  {
    name: 'synapse_unquarantine_media',
    methods: ['POST'],
    paths: [`${V1}/media/unquarantine/:serverName/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: synapseUnquarantineHandler,
  },
  {
    name: 'synapse_protect_media',
    methods: ['POST'],
    paths: [`${V1}/media/protect/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: (c) => synapseProtectHandler(c, true),
  },
  {
    name: 'synapse_unprotect_media',
    methods: ['POST'],
    paths: [`${V1}/media/unprotect/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: (c) => synapseProtectHandler(c, false),
  },
  {
    name: 'synapse_delete_media_by_date',
    methods: ['POST'],
    paths: [`${V1}/media/delete`, `${V1}/media/:serverName/delete`],
    auth: 'user',
    body: 'small',
    handler: synapseDeleteByDateHandler,
  },
  {
    name: 'synapse_media_info',
    methods: ['GET'],
    paths: [`${V1}/media/:serverName/:mediaId`],
    auth: 'user',
    handler: synapseMediaInfoHandler,
  },
  {
    name: 'synapse_delete_media',
    methods: ['DELETE'],
    paths: [`${V1}/media/:serverName/:mediaId`],
    auth: 'user',
    body: 'small',
    handler: synapseDeleteMediaHandler,
  },
  {
    name: 'synapse_quarantine_room',
    methods: ['POST'],
    paths: [`${V1}/room/:roomId/media/quarantine`, `${V1}/quarantine_media/:roomId`],
    auth: 'user',
    body: 'small',
    handler: synapseQuarantineRoomHandler,
  },
  {
    name: 'synapse_quarantine_user',
    methods: ['POST'],
    paths: [`${V1}/user/:userId/media/quarantine`],
    auth: 'user',
    body: 'small',
    handler: synapseQuarantineUserHandler,
  },
  {
    name: 'synapse_purge_media_cache',
    methods: ['POST'],
    paths: [`${V1}/purge_media_cache`],
    auth: 'user',
    body: 'small',
    handler: synapsePurgeMediaCacheHandler,
  },
  {
    name: 'synapse_user_media',
    methods: ['GET'],
    paths: [`${V1}/users/:userId/media`],
    auth: 'user',
    handler: synapseUserMediaHandler,
  },
  {
    name: 'synapse_delete_user_media',
    methods: ['DELETE'],
    paths: [`${V1}/users/:userId/media`],
    auth: 'user',
    body: 'small',
    handler: synapseDeleteUserMediaHandler,
  },
  {
    name: 'synapse_user_media_stats',
    methods: ['GET'],
    paths: [`${V1}/statistics/users/media`],
    auth: 'user',
    handler: synapseUserStatsHandler,
  },
];
