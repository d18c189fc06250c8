-- Long-running jobs (datastore transfers, later purges and exports) that must survive restarts
-- and run on exactly one instance of a fleet. An instance claims a task row (claimed_by) and
-- keeps heartbeat_ts fresh while it works; a task whose claimer stopped heartbeating (a crash)
-- is claimed again by whoever sees it stale. end_ts stays NULL until the task finishes.
CREATE TABLE background_tasks (
  id            BIGSERIAL PRIMARY KEY,
  name          TEXT    NOT NULL,
  params        TEXT    NOT NULL,
  start_ts      BIGINT  NOT NULL,
  end_ts        BIGINT,
  error         TEXT,
  -- Task-defined JSON (counts, resumable state); written by the running instance only.
  progress      TEXT,
  claimed_by    TEXT,
  heartbeat_ts  BIGINT
);
CREATE INDEX background_tasks_unfinished ON background_tasks (id) WHERE end_ts IS NULL;
