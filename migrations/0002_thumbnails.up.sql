-- Generated thumbnails, one row per (media, bucket, method, animated). They live in their own
-- table, never in `media` (MMR stored them as media rows too, which bloated its purges, #648).
-- Rows point at blobs like media rows do and share them by sha256_hash; a row whose output
-- would equal the original points at the original's blob (original-when-smaller).
CREATE TABLE thumbnails (
  origin        TEXT    NOT NULL,
  media_id      TEXT    NOT NULL,
  -- The bucket (or dynamic size) asked of the generator, not the output size.
  width         INTEGER NOT NULL,
  height        INTEGER NOT NULL,
  method        TEXT    NOT NULL,
  animated      BOOLEAN NOT NULL,
  content_type  TEXT    NOT NULL,
  out_width     INTEGER NOT NULL,
  out_height    INTEGER NOT NULL,
  sha256_hash   TEXT    NOT NULL,
  size_bytes    BIGINT  NOT NULL,
  datastore_id  TEXT    NOT NULL,
  location      TEXT    NOT NULL,
  creation_ts   BIGINT  NOT NULL,
  PRIMARY KEY (origin, media_id, width, height, method, animated)
);
CREATE INDEX thumbnails_sha256_hash ON thumbnails (sha256_hash);
CREATE INDEX thumbnails_creation_ts ON thumbnails (creation_ts);
CREATE INDEX thumbnails_datastore_location ON thumbnails (datastore_id, location);
