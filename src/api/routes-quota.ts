import type { Route } from './services.js';
import { configHandler } from './media/config.js';
import { usageHandler } from './media/usage.js';

const MSC4034 = '/_matrix/media/unstable/org.matrix.msc4034';

// MSC4034 (media limits and space usage): the usage endpoint on its proposed stable path and
// its unstable prefix, and /config under the unstable prefix (the stable /config row is in
// routes.ts). The stable and unstable paths differ only in the names of the answer's keys.
export const QUOTA_ROUTES: Route[] = [
  {
    name: 'usage',
    methods: ['GET'],
    paths: ['/_matrix/client/v1/media/usage'],
    auth: 'user',
    handler: (c) => usageHandler(c, false),
  },
  {
    name: 'usage_unstable',
    methods: ['GET'],
    paths: [`${MSC4034}/usage`],
    auth: 'user',
    handler: (c) => usageHandler(c, true),
  },
  {
    name: 'config_unstable',
    methods: ['GET'],
    paths: [`${MSC4034}/config`],
    auth: 'user',
    handler: (c) => configHandler(c, true),
  },
];
