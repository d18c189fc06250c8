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
CREATE FUNCTION user_usage_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO user_usage (origin, user_id, bytes, files)
  SELECT origin, user_id, SUM(size_bytes), COUNT(*) FROM added WHERE user_id <> ''
  GROUP BY origin, user_id ORDER BY origin, user_id
  ON CONFLICT (origin, user_id) DO UPDATE
    SET bytes = user_usage.bytes + EXCLUDED.bytes, files = user_usage.files + EXCLUDED.files;
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
