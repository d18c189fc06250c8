-- Moderation and administration (quarantine, purge, attributes, audit). Media state is per
-- hash, answers are per row: a quarantine flags every row of a hash (within a scope) and blocks
-- the hash for new uploads; a purge deletes rows and deletes a blob only when no row points at it.

-- Who quarantined a row (Synapse's `quarantined_by`); NULL when not quarantined. A quarantined
-- row whose blob was purged keeps its row as a tombstone with location '' (no blob), so the
-- mxc keeps answering 404 and the hash stays blocked.
ALTER TABLE media ADD COLUMN quarantined_by TEXT;
CREATE INDEX media_creation_ts ON media (creation_ts);
CREATE INDEX media_quarantined ON media (origin) WHERE quarantined;

-- Hashes refused for new uploads and remote fetches. scope '*' is fleet-wide (a repo admin's
-- quarantine); otherwise the homeserver whose local admin quarantined it.
CREATE TABLE quarantined_hashes (
  sha256_hash  TEXT   NOT NULL,
  scope        TEXT   NOT NULL,
  actor        TEXT   NOT NULL,
  created_ts   BIGINT NOT NULL,
  PRIMARY KEY (sha256_hash, scope)
);

-- MMR's media attributes: purpose 'pinned' protects from quarantine and purge (Synapse's
-- "protect"). Rows only for media whose purpose is not the default 'none'.
CREATE TABLE media_attributes (
  origin    TEXT NOT NULL,
  media_id  TEXT NOT NULL,
  purpose   TEXT NOT NULL,
  PRIMARY KEY (origin, media_id)
);

-- IDs of purged local media: never handed out again, so an old mxc cannot come to mean new bytes.
CREATE TABLE reserved_media (
  origin       TEXT   NOT NULL,
  media_id     TEXT   NOT NULL,
  reason       TEXT   NOT NULL,
  reserved_ts  BIGINT NOT NULL,
  PRIMARY KEY (origin, media_id)
);

-- Every admin action: who, what, on what, how many, when (operators answer for takedowns).
CREATE TABLE admin_audit (
  id          BIGSERIAL PRIMARY KEY,
  ts          BIGINT NOT NULL,
  actor       TEXT   NOT NULL,
  -- The homeserver the request came in for (its Host).
  server_name TEXT   NOT NULL,
  action      TEXT   NOT NULL,
  target      TEXT   NOT NULL,
  -- JSON: counts and parameters of the action.
  details     TEXT   NOT NULL
);
CREATE INDEX admin_audit_ts ON admin_audit (ts);

-- Cache invalidations for other instances that have no Redis channel (or missed a message):
-- each instance reads the rows after the last one it saw every few seconds. Old rows are swept.
CREATE TABLE media_invalidations (
  id          BIGSERIAL PRIMARY KEY,
  created_ts  BIGINT NOT NULL,
  -- JSON: {"media": ["origin/mediaId", ...], "hashes": ["sha256", ...]}
  payload     TEXT   NOT NULL
);

-- Blobs a purge freed, written in the transaction that deleted their rows and removed once the
-- blob is deleted (or found referenced again): a crash between the two leaves the list, which
-- the next purge or the hourly expiry task works off, so no freed blob is forgotten.
CREATE TABLE pending_blob_deletes (
  datastore_id  TEXT   NOT NULL,
  location      TEXT   NOT NULL,
  sha256_hash   TEXT   NOT NULL,
  size_bytes    BIGINT NOT NULL,
  created_ts    BIGINT NOT NULL,
  PRIMARY KEY (datastore_id, location)
);
