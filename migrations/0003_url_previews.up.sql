-- URL previews, cached per URL, hour bucket of the client's `ts` and Accept-Language. Failures
-- are cached too (error_code set, preview_json NULL) so a dead link is not fetched again on every
-- message render. The preview image is ordinary local media (image_mxc in the JSON).
CREATE TABLE url_previews (
  -- The homeserver asked: its preview image is that homeserver's media, so one homeserver's
  -- row (and image mxc) is never answered to another's clients.
  server_name    TEXT    NOT NULL,
  url            TEXT    NOT NULL,
  bucket_ts      BIGINT  NOT NULL,
  language       TEXT    NOT NULL,
  -- The OpenGraph JSON answered to clients, as text (stable key order, no re-serialising).
  preview_json   TEXT,
  error_code     TEXT,
  error_status   INTEGER,
  error_message  TEXT,
  creation_ts    BIGINT  NOT NULL,
  PRIMARY KEY (server_name, url, bucket_ts, language)
);
CREATE INDEX url_previews_creation_ts ON url_previews (creation_ts);
