-- GDPR archives made by the server (MMR's export_data task): one row per export, one row per
-- finished part. export_id is the bearer secret of the unauthenticated view/metadata/part/
-- delete endpoints (MMR's rule), so it is long and random. finished_ts stays NULL while the
-- task runs; a part row is written only once its object is committed to the datastore.
CREATE TABLE exports (
  export_id    TEXT    NOT NULL PRIMARY KEY,
  -- A user ID or a server name.
  entity       TEXT    NOT NULL,
  -- The homeserver (Host) the request came for.
  origin       TEXT    NOT NULL,
  created_ts   BIGINT  NOT NULL,
  finished_ts  BIGINT,
  error        TEXT,
  task_id      BIGINT
);
CREATE TABLE export_parts (
  export_id     TEXT    NOT NULL REFERENCES exports (export_id) ON DELETE CASCADE,
  part_index    INTEGER NOT NULL,
  size_bytes    BIGINT  NOT NULL,
  file_name     TEXT    NOT NULL,
  sha256        TEXT    NOT NULL,
  datastore_id  TEXT    NOT NULL,
  location      TEXT    NOT NULL,
  PRIMARY KEY (export_id, part_index)
);
CREATE INDEX export_parts_location ON export_parts (datastore_id, location);
-- Archives uploaded for import (MMR's import_data task): parts arrive one request at a time,
-- in any order, and wait in the archives datastore until the import is closed.
CREATE TABLE archive_imports (
  import_id   TEXT    NOT NULL PRIMARY KEY,
  origin      TEXT    NOT NULL,
  created_ts  BIGINT  NOT NULL,
  closed_ts   BIGINT,
  task_id     BIGINT
);
CREATE TABLE archive_import_parts (
  import_id     TEXT    NOT NULL REFERENCES archive_imports (import_id) ON DELETE CASCADE,
  part_index    INTEGER NOT NULL,
  size_bytes    BIGINT  NOT NULL,
  sha256        TEXT    NOT NULL,
  datastore_id  TEXT    NOT NULL,
  location      TEXT    NOT NULL,
  PRIMARY KEY (import_id, part_index)
);
CREATE INDEX archive_import_parts_location ON archive_import_parts (datastore_id, location);
