-- Media rows point at blobs by (datastore_id, location); many rows may share one blob
-- (deduplicated by sha256_hash). A row is only ever inserted after its blob is durable.
CREATE TABLE media (
  origin        TEXT    NOT NULL,
  media_id      TEXT    NOT NULL,
  upload_name   TEXT,
  content_type  TEXT,
  user_id       TEXT    NOT NULL,
  sha256_hash   TEXT    NOT NULL,
  size_bytes    BIGINT  NOT NULL,
  datastore_id  TEXT    NOT NULL,
  location      TEXT    NOT NULL,
  creation_ts   BIGINT  NOT NULL,
  quarantined   BOOLEAN NOT NULL DEFAULT FALSE,
  -- MSC3916 freeze: media created after the freeze is served on authenticated endpoints only.
  requires_auth BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (origin, media_id)
);
CREATE INDEX media_sha256_hash ON media (sha256_hash);
CREATE INDEX media_origin_user ON media (origin, user_id);
CREATE INDEX media_datastore_location ON media (datastore_id, location);

-- MSC2246 async uploads: an ID handed out by /create that has no content yet.
CREATE TABLE media_reservations (
  origin      TEXT   NOT NULL,
  media_id    TEXT   NOT NULL,
  user_id     TEXT   NOT NULL,
  created_ts  BIGINT NOT NULL,
  expires_ts  BIGINT NOT NULL,
  PRIMARY KEY (origin, media_id)
);
CREATE INDEX media_reservations_user ON media_reservations (origin, user_id, expires_ts);
CREATE INDEX media_reservations_expiry ON media_reservations (expires_ts);
