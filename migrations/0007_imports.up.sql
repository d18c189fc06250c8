-- Where a long import stopped (media-repo import mmr): one row per job, updated in the same
-- transaction as each batch it copies, so a run killed at any instant resumes after the last
-- batch that committed and never copies a batch twice.
CREATE TABLE import_checkpoints (
  job         TEXT    NOT NULL PRIMARY KEY,
  phase       TEXT    NOT NULL,
  -- JSON: the last key copied in this phase.
  cursor      TEXT    NOT NULL,
  finished    BOOLEAN NOT NULL,
  updated_ts  BIGINT  NOT NULL
);
