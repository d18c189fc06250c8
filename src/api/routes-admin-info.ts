import type { Route } from './services.js';
import { mediaInfoHandler } from './media/info.js';
import {
  domainUsageHandler,
  federationTestHandler,
  uploadsUsageHandler,
  usersStatsHandler,
  usersUsageHandler,
} from './admin/usage.js';

// MMR's read-only information endpoints: media info, usage reports, federation test.
// Literal `usage/{server}/...` rows are distinct from `usage/{server}` by segment count.

/** MMR's unstable prefixes. */
const INFO = '/_matrix/media/{unstable,unstable/io.t2bot.media}';
const ADMIN = `${INFO}/admin`;

export const ADMIN_INFO_ROUTES: Route[] = [
  {
    name: 'media_info',
    methods: ['GET'],
    paths: [`${INFO}/info/:serverName/:mediaId`],
    auth: 'user',
    handler: mediaInfoHandler,
  },
  {
    name: 'admin_usage',
    methods: ['GET'],
    paths: [`${ADMIN}/usage/:serverName`],
    auth: 'admin',
    handler: domainUsageHandler,
  },
  {
    name: 'admin_usage_users',
    methods: ['GET'],
    paths: [`${ADMIN}/usage/:serverName/users`],
    auth: 'admin',
    handler: usersUsageHandler,
  },
  {
    name: 'admin_usage_users_stats',
    methods: ['GET'],
    paths: [`${ADMIN}/usage/:serverName/users-stats`],
    auth: 'localadmin',
    handler: usersStatsHandler,
  },
  {
    name: 'admin_usage_uploads',
    methods: ['GET'],
    paths: [`${ADMIN}/usage/:serverName/uploads`],
    auth: 'admin',
    handler: uploadsUsageHandler,
  },
  {
    name: 'admin_federation_test',
    methods: ['GET'],
    paths: [`${ADMIN}/federation/test/:serverName`],
    auth: 'admin',
    handler: federationTestHandler,
  },
];
