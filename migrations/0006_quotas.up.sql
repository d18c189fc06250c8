-- Upload quotas (uploads.quotas) and MSC4034 usage: bytes and files per local uploader, kept
-- exact by triggers on media in the same transaction as the row itself, so the counters
-- survive restarts and a purge gives the bytes back. Every local row counts, deduplicated or
-- not (MMR's rule: two users sharing one blob each pay for it); remote media (user_id '') does
-- not. Quarantined rows stay as tombstones and stay counted until they are purged.
CREATE TABLE user_usage (
  origin   TEXT   NOT NULL,
  user_id  TEXT   NOT NULL,
  bytes    BIGINT NOT NULL DEFAULT 0,
  files    BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (origin, user_id)
);

INSERT INTO user_usage (origin, user_id, bytes, files)
SELECT origin, user_id, SUM(size_bytes), COUNT(*) FROM media WHERE user_id <> '' GROUP BY origin, user_id;

-- Statement-level triggers over the transition tables: one upsert per statement however many
-- rows a purge deletes, and the counter rows are taken in key order so two purges touching
-- the same users cannot deadlock on them.
-- An upload held to a quota names its limits in the transaction setting media_repo.upload_quota
-- ('maxBytes:maxFiles', <= 0 is no limit; set by the insert statement itself), and the trigger
-- refuses the statement (SQLSTATE MRQ01, the counters before this row in DETAIL) when the
-- counters it has just raised pass either. The check is the counter update itself: the row is
-- locked by it until commit, so one user's concurrent uploads are admitted one at a time, at
-- no more cost than counting them (a separate locking statement cost 0.91 of the throughput).
CREATE FUNCTION user_usage_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  quota TEXT := current_setting('media_repo.upload_quota', true);
  max_bytes BIGINT;
  max_files BIGINT;
  over RECORD;
  mine RECORD;
BEGIN
  IF quota IS NULL OR quota = '' THEN
    INSERT INTO user_usage (origin, user_id, bytes, files)
    SELECT origin, user_id, SUM(size_bytes), COUNT(*) FROM added WHERE user_id <> ''
    GROUP BY origin, user_id ORDER BY origin, user_id
    ON CONFLICT (origin, user_id) DO UPDATE
      SET bytes = user_usage.bytes + EXCLUDED.bytes, files = user_usage.files + EXCLUDED.files;
    RETURN NULL;
  END IF;
  max_bytes := split_part(quota, ':', 1)::BIGINT;
  max_files := split_part(quota, ':', 2)::BIGINT;
  WITH raised AS (
    INSERT INTO user_usage AS u (origin, user_id, bytes, files)
    SELECT origin, user_id, SUM(size_bytes), COUNT(*) FROM added WHERE user_id <> ''
    GROUP BY origin, user_id ORDER BY origin, user_id
    ON CONFLICT (origin, user_id) DO UPDATE
      SET bytes = u.bytes + EXCLUDED.bytes, files = u.files + EXCLUDED.files
    RETURNING u.bytes, u.files
  )
  SELECT bytes, files INTO over FROM raised
  WHERE (max_bytes > 0 AND bytes > max_bytes) OR (max_files > 0 AND files > max_files) LIMIT 1;
  IF FOUND THEN
    -- Only the refusal pays for the counters before the statement (an upload adds one row).
    SELECT COALESCE(SUM(size_bytes), 0) AS bytes, COUNT(*) AS files INTO mine FROM added WHERE user_id <> '';
    RAISE EXCEPTION 'upload quota exceeded' USING ERRCODE = 'MRQ01',
      DETAIL = (over.bytes - mine.bytes) || ':' || (over.files - mine.files);
  END IF;
  RETURN NULL;
END;
$$;

CREATE FUNCTION user_usage_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO user_usage (origin, user_id, bytes, files)
  SELECT origin, user_id, -SUM(size_bytes), -COUNT(*) FROM removed WHERE user_id <> ''
  GROUP BY origin, user_id ORDER BY origin, user_id
  ON CONFLICT (origin, user_id) DO UPDATE
    SET bytes = user_usage.bytes + EXCLUDED.bytes, files = user_usage.files + EXCLUDED.files;
  RETURN NULL;
END;
$$;

CREATE TRIGGER media_usage_insert AFTER INSERT ON media
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION user_usage_add();
CREATE TRIGGER media_usage_delete AFTER DELETE ON media
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION user_usage_remove();
